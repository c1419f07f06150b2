//! The settings of `SessionRecovery.new` as Ruby's `Options.session` made
//! them: every value was checked there, with messages naming the option;
//! here they become the core's one typed `SessionConfig`, unchecked again.
//! Callbacks and the logger, being Ruby objects, come apart (`Hooks`).

use std::time::Duration;

use magnus::value::Opaque;
use magnus::{prelude::*, Error, RHash, Ruby, Value};
use serde::Deserialize;

use super::errors::IntoRuby;
use super::values::hash_get;
use crate::budget::Money;
use crate::session::SessionConfig;
use crate::store::layout::TaskId;
use crate::store::StoreSpec;

#[derive(Debug, Deserialize)]
pub(super) struct Settings {
    store: String,
    checkpoint_interval: Option<f64>,
    checkpoint_on_items: Option<u64>,
    max_checkpoints: Option<u64>,
    warn_threshold: f64,
    max_retries: u64,
    enabled: bool,
    track_costs: bool,
    enforce_budget: bool,
    auto_resume: bool,
    #[serde(rename = "async")]
    async_writes: bool,
    delta_threshold: Option<u64>,
}

impl Settings {
    pub(super) fn from_ruby(ruby: &Ruby, settings: RHash) -> Result<Settings, Error> {
        serde_magnus::deserialize(ruby, settings)
    }

    /// The session's configuration. Zero or nil turns a trigger or a limit
    /// off; a duration was capped at a hundred years by Ruby.
    pub(super) fn into_config(
        self,
        task: TaskId,
        budget: Option<Money>,
    ) -> Result<SessionConfig, Error> {
        let mut config = SessionConfig::new(task, StoreSpec::parse(&self.store).into_ruby()?);
        config.budget = budget;
        config.checkpoint_interval = self
            .checkpoint_interval
            .filter(|&secs| secs > 0.0)
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok());
        config.checkpoint_on_items = self.checkpoint_on_items.filter(|&n| n > 0);
        config.max_checkpoints = self.max_checkpoints.filter(|&n| n > 0);
        config.warn_threshold = self.warn_threshold;
        config.max_retries = self.max_retries.min(u32::MAX as u64) as u32;
        config.enabled = self.enabled;
        config.track_costs = self.track_costs;
        config.enforce_budget = self.enforce_budget;
        config.auto_resume = self.auto_resume;
        config.async_writes = self.async_writes;
        config.delta_threshold = self.delta_threshold.filter(|&n| n > 0);
        Ok(config)
    }
}

/// The Ruby objects a session calls: kept by Rust, so marked by the
/// session's `mark` (see `SessionRecovery`).
pub(super) struct Hooks {
    pub(crate) on_checkpoint: Option<Opaque<Value>>,
    pub(crate) on_resume: Option<Opaque<Value>>,
    pub(crate) on_complete: Option<Opaque<Value>>,
    pub(crate) logger: Option<Opaque<Value>>,
}

impl Hooks {
    pub(super) fn from_ruby(hooks: RHash) -> Hooks {
        let optional = |key: &str| {
            let value = hash_get(hooks, key);
            (!value.is_nil()).then(|| Opaque::from(value))
        };
        Hooks {
            on_checkpoint: optional("on_checkpoint"),
            on_resume: optional("on_resume"),
            on_complete: optional("on_complete"),
            logger: optional("logger"),
        }
    }

    pub(super) fn all(&self) -> [Option<Opaque<Value>>; 4] {
        [
            self.on_checkpoint,
            self.on_resume,
            self.on_complete,
            self.logger,
        ]
    }
}
