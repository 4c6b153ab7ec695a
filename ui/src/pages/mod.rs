//! Routed screens.

mod calls;
mod endpoints;
mod playground;

pub use calls::Calls;
pub use endpoints::Endpoints;
pub use playground::{Playground, PlaygroundState};
