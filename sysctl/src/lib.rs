//! Host tuning
