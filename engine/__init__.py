"""The pure core: knowledge in, facts in, findings out. No Flask, no FHIR models, no IO
while evaluating."""

from .evaluate import evaluate
from .knowledge import KnowledgeBase, load_knowledge
from .model import Fact, Finding, KnowledgeError

__all__ = ["Fact", "Finding", "KnowledgeBase", "KnowledgeError", "evaluate", "load_knowledge"]
