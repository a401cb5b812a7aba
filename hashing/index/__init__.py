"""From a trained model to a searchable index: packed codes, faiss binary indexes, search."""

from hashing.index.encoder import CodeEncoder, InputSpec
from hashing.index.faiss_backend import FaissSpec
from hashing.index.hash_index import HashIndex, SearchResult
from hashing.index.packing import hamming_packed, pack_codes, packed_width, unpack_codes

__all__ = [
    "CodeEncoder",
    "FaissSpec",
    "HashIndex",
    "InputSpec",
    "SearchResult",
    "hamming_packed",
    "pack_codes",
    "packed_width",
    "unpack_codes",
]
