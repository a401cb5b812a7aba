"""From a trained model to a searchable index: packed codes, faiss binary indexes, search."""

from hashing.index.encoder import CodeEncoder, InputSpec
from hashing.index.faiss_backend import FaissSpec
from hashing.index.hash_index import HashIndex, ItemNotFound, SearchResult
from hashing.index.packing import hamming_packed, pack_codes, packed_width, unpack_codes
from hashing.index.queries import Query

__all__ = [
    "CodeEncoder",
    "FaissSpec",
    "HashIndex",
    "InputSpec",
    "ItemNotFound",
    "Query",
    "SearchResult",
    "hamming_packed",
    "pack_codes",
    "packed_width",
    "unpack_codes",
]
