//! One report model built from the store, rendered in several formats.
//! (Stub: lands with the store.)
