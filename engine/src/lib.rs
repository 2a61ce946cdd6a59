//! Doppel's engine: everything that is not plugin-framework code.
//!
//! Models are defined twice: a candle `Module` for training ([`model`]) and a hand-written
//! streaming kernel for the audio thread ([`kernel`]), sharing variable names and checked
//! against each other in golden tests.
