//! Subject-key normalisers (being written).
