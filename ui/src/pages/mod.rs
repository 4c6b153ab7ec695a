//! Routed screens.

mod calls;
mod endpoints;
mod history;
pub(crate) mod playground;
mod prompts;
mod save_version;

pub use calls::Calls;
pub use endpoints::Endpoints;
pub use playground::{Playground, PlaygroundState};
pub use prompts::Prompts;
