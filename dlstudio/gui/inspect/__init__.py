"""Views that use a trained model: classify images, feature maps, filters, saliency, dreams, mistakes."""
