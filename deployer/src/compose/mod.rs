//! The stack file: a typed subset of the Compose format.

mod interpolate;
mod load;
pub mod model;
pub mod units;

pub use interpolate::{Variables, interpolate_str};
pub use load::{ComposeError, LoadedStack, load_stack};
