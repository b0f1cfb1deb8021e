"""The hepfm graph network: message-passing blocks, encoder, heads and foundation model."""

from hepfm.models.blocks import GraphNetBlock
from hepfm.models.foundation import FoundationModel, ModelConfig
from hepfm.models.heads import Head
from hepfm.models.network import GraphNetwork

__all__ = ["FoundationModel", "GraphNetBlock", "GraphNetwork", "Head", "ModelConfig"]
