//! Who did what: each change an action makes to the store is noted with the console's author
//! (`--as`, the window's name, else the OS user), so a team reads who changed an endpoint, a
//! route or a price, and when (`milc activity`).

pub mod storage;

use milc_api::workspace::Activity;

use crate::db::now_ms;
use crate::{Console, Error};

impl Console {
    /// The newest `limit` changes, newest first.
    pub async fn activity(&self, limit: u32) -> Result<Vec<Activity>, Error> {
        Ok(storage::recent(&mut self.store.read().await?, limit).await?)
    }

    /// Notes that this console's author did `action` to `subject`, once the change is made.
    pub(crate) async fn noted(&self, action: &str, subject: &str) -> Result<(), Error> {
        let a = Activity {
            at_ms: now_ms(),
            author: self.author(),
            action: action.to_owned(),
            subject: subject.to_owned(),
        };
        Ok(storage::insert(&mut self.store.read().await?, &a).await?)
    }
}
