//! Routed screens.

mod calls;
mod columns;
mod compare;
mod datasets;
mod endpoints;
mod history;
mod lifecycle;
pub(crate) mod playground;
mod prompts;
mod retirement;
mod routes;
mod runs;
mod sample;
mod save_version;
mod usage;
mod usage_settings;

pub use calls::Calls;
pub use compare::Compare;
pub use datasets::Datasets;
pub use endpoints::Endpoints;
pub use lifecycle::Lifecycle;
pub use playground::{Playground, PlaygroundState};
pub use prompts::Prompts;
pub use routes::Routes;
pub use runs::Runs;
pub use sample::SampleBanner;
pub use usage::Usage;
