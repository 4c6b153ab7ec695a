//! Routed screens.

mod calls;
mod columns;
mod compare;
mod datasets;
mod endpoints;
mod history;
pub(crate) mod playground;
mod prompts;
mod runs;
mod save_version;
mod usage;

pub use calls::Calls;
pub use compare::Compare;
pub use datasets::Datasets;
pub use endpoints::Endpoints;
pub use playground::{Playground, PlaygroundState};
pub use prompts::Prompts;
pub use runs::Runs;
pub use usage::Usage;
