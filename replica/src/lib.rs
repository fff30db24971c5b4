//! see README
