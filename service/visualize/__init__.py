"""What the network sees: feature maps, learned filters and occlusion maps of a served model.

:class:`Views` computes them (``service.http.routes.visualize`` serves them); the layer tensors come
from the card's :class:`repository.LayerOutputs`, recorded and checked at build time
(``export.layers``). Nothing here runs until a view is asked for.
"""

from .views import DEFAULT_CHANNELS, Views

__all__ = ["DEFAULT_CHANNELS", "Views"]
