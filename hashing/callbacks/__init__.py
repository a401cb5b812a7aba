"""Lightning callbacks for hashing experiments."""

from hashing.callbacks.retrieval_evaluation import RetrievalEvaluation

__all__ = ["RetrievalEvaluation"]
