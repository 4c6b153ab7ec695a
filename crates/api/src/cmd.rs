//! The desktop shell's commands, each declared once: a request struct whose serialized fields are
//! exactly the arguments the Tauri command takes, its wire name and its reply type. The UI sends
//! these structs; the shell's test checks that it registers every name in [`ALL_COMMANDS`] and
//! nothing else, so a renamed or forgotten command breaks a build or a test, not the app.

use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::compare::{
    Ballot, CompareProgress, ComparisonInfo, ComparisonResults, ComparisonSpec, JudgeRun,
    RatingTask, SideBySide, SideBySideQuery,
};
use crate::dataset::{DatasetEdit, DatasetItem, DatasetPreview, DatasetVersion, Imported};
use crate::export::{Exported, Format};
use crate::gateway::{CanaryStatus, GatewayInfo, GatewayKey, NewGatewayKey, Route};
use crate::lifecycle::{
    ArchiveReport, ArchiveScope, CandidateSpec, DriftQuery, DriftReport, Lifecycle, LoadTest,
    LoadTestProgress, LoadTestSpec, RetirementEntry, Schedule, UseCase, UseCaseSpec, UsedBy,
};
use crate::otel::{OtelChange, OtelSettings, OtelStatus};
use crate::prompt::{
    HistoryEntry, LabelMove, NewVersion, PromptDetail, PromptDiff, PromptSummary, PromptVersion,
    Saved,
};
use crate::run::{
    ResultsPage, ResultsQuery, RunComparison, RunInfo, RunProgress, RunSpec, RunSummary,
};
use crate::usage::{
    Alert, AlertSettings, Budget, CallDetail, CallsQuery, PriceEntry, Recomputation, UsageQuery,
};
use crate::{
    CallRecord, ChatRequest, ChatResult, ConnectionTest, Endpoint, EndpointSpec, TokenChange,
};

/// A request to the desktop shell: `NAME` is the Tauri command it invokes and `Reply` what the
/// command answers when it succeeds (failures arrive as [`crate::CallError`]).
pub trait Command: Serialize {
    const NAME: &'static str;
    type Reply: DeserializeOwned;
}

/// The window's end of a Tauri channel that carries `T`s while a command runs, as the command's
/// argument: the value the window's `Channel` serializes to (`__CHANNEL__:<id>`), which Tauri
/// turns back into a `tauri::ipc::Channel<T>`.
pub struct ChannelId<T> {
    id: String,
    event: PhantomData<fn() -> T>,
}

impl<T> ChannelId<T> {
    /// `id` is what the window's channel object serializes to.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            event: PhantomData,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.id
    }
}

// By hand: the derives would ask `T` for the same traits, and `T` is only a marker.
impl<T> Clone for ChannelId<T> {
    fn clone(&self) -> Self {
        Self::new(self.id.clone())
    }
}

impl<T> PartialEq for ChannelId<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<T> fmt::Debug for ChannelId<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ChannelId").field(&self.id).finish()
    }
}

impl<T> Serialize for ChannelId<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.id)
    }
}

impl<'de, T> Deserialize<'de> for ChannelId<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

/// Declares each command's request struct and its [`Command`] impl, and lists every name in
/// `ALL_COMMANDS`. Fields are serialized in camelCase, the keys Tauri maps to the command's
/// snake_case parameters (`on_progress` travels as `onProgress`).
macro_rules! commands {
    ($(
        $(#[$doc:meta])*
        $name:ident => $Request:ident { $($field:ident: $ty:ty),* $(,)? } -> $reply:ty;
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
            #[serde(rename_all = "camelCase")]
            pub struct $Request {
                $(pub $field: $ty,)*
            }

            impl Command for $Request {
                const NAME: &'static str = stringify!($name);
                type Reply = $reply;
            }
        )*

        /// The name of every declared command, in declaration order.
        pub const ALL_COMMANDS: &[&str] = &[$(stringify!($name)),*];
    };
}

commands! {
    endpoints_list => EndpointsList {} -> Vec<Endpoint>;
    /// Creates (`id` None) or edits an endpoint; the token goes to the OS keyring.
    endpoints_save => EndpointsSave { id: Option<i64>, spec: EndpointSpec, token: TokenChange } -> Endpoint;
    endpoints_delete => EndpointsDelete { name: String } -> ();
    endpoints_test => EndpointsTest { name: String } -> ConnectionTest;

    /// Sends a chat; content pieces arrive on `on_event`. `run` names it for [`ChatCancel`].
    chat => Chat { endpoint: String, request: ChatRequest, run: String, on_event: ChannelId<String> } -> ChatResult;
    chat_cancel => ChatCancel { run: String } -> ();

    prompts_list => PromptsList {} -> Vec<PromptSummary>;
    prompts_show => PromptsShow { name: String } -> PromptDetail;
    prompts_resolve => PromptsResolve { reference: String } -> PromptVersion;
    /// Saves a version; `create` refuses a prompt name that exists.
    prompts_save => PromptsSave { version: NewVersion, create: bool } -> Saved;
    prompts_diff => PromptsDiff { name: String, left: u32, right: u32 } -> PromptDiff;
    prompts_label => PromptsLabel { name: String, version: u32, label: String } -> Option<LabelMove>;
    history_list => HistoryList { search: String, limit: u32 } -> Vec<HistoryEntry>;

    datasets_list => DatasetsList {} -> Vec<DatasetVersion>;
    /// `kind`: `csv` or `jsonl`.
    datasets_preview => DatasetsPreview { file: String, kind: String, text: String } -> DatasetPreview;
    datasets_import => DatasetsImport { name: String, file: String, kind: String, text: String } -> Imported;
    /// A page of a dataset version's items.
    datasets_items => DatasetsItems { reference: String, offset: u64, limit: u64 } -> (DatasetVersion, Vec<DatasetItem>);
    /// Stores an edited copy of a version as a new version.
    datasets_edit => DatasetsEdit { edit: DatasetEdit } -> Imported;
    /// Writes a version to `path` (empty: the downloads folder).
    datasets_export => DatasetsExport { reference: String, kind: Format, path: String } -> Exported;

    runs_list => RunsList {} -> Vec<RunInfo>;
    runs_create => RunsCreate { spec: RunSpec } -> RunInfo;
    /// Runs (or resumes) a run; progress arrives on `on_progress`. [`RunsCancel`] stops it.
    runs_execute => RunsExecute { id: i64, on_progress: ChannelId<RunProgress> } -> RunSummary;
    runs_cancel => RunsCancel { id: i64 } -> ();
    runs_summary => RunsSummary { id: i64 } -> RunSummary;
    runs_page => RunsPage { id: i64, query: ResultsQuery } -> ResultsPage;
    runs_item => RunsItem { id: i64, item: u64 } -> DatasetItem;
    runs_compare => RunsCompare { a: i64, b: i64 } -> RunComparison;

    compare_list => CompareList {} -> Vec<ComparisonInfo>;
    compare_create => CompareCreate { spec: ComparisonSpec } -> ComparisonInfo;
    /// Runs a comparison's variants; progress arrives on `on_progress`. [`CompareCancel`] stops
    /// it (a later run resumes).
    compare_run => CompareRun { name: String, on_progress: ChannelId<CompareProgress> } -> ComparisonInfo;
    compare_cancel => CompareCancel { name: String } -> ();
    /// An LLM judge (`RUBRIC@ENDPOINT`) votes on every pair in both orders; (done, total)
    /// arrives on `on_progress`. [`CompareJudgeCancel`] stops it (a later judge run resumes).
    compare_judge => CompareJudge { name: String, judge: String, on_progress: ChannelId<(u64, u64)> } -> JudgeRun;
    compare_judge_cancel => CompareJudgeCancel { name: String } -> ();
    compare_task => CompareTask { name: String, rater: String, index: u64 } -> RatingTask;
    /// Records a vote; answers how many tasks the rater has voted on.
    compare_vote => CompareVote { name: String, rater: String, index: u64, ballot: Ballot } -> u64;
    /// Results as `rater` may see them (refused until the rater is done); no rater: all of them.
    compare_results => CompareResults { name: String, rater: Option<String> } -> ComparisonResults;
    compare_side_by_side => CompareSideBySide { name: String, query: SideBySideQuery } -> SideBySide;
    /// Writes `finetune`, `dpo` or `csv` to `path` (empty: the downloads folder).
    compare_export => CompareExport { name: String, kind: Format, path: String } -> Exported;

    usage_report => UsageReport { query: UsageQuery } -> crate::usage::UsageReport;
    /// The calls behind a bar of a chart, or the Calls page's filters.
    usage_calls => UsageCalls { query: CallsQuery } -> Vec<CallRecord>;
    /// A call with its kept bodies and the run, comparison or route that made it.
    call_detail => CallDetailGet { id: i64 } -> CallDetail;
    /// Writes what is shown (`shown`) or the calls of its range (`ndjson`, `csv`) to `path`
    /// (empty: the downloads folder); answers the path and the rows written.
    usage_export => UsageExport { query: UsageQuery, kind: Format, path: String } -> Exported;
    alerts_list => AlertsList { limit: u32 } -> Vec<Alert>;
    alerts_ack => AlertsAck { id: i64 } -> bool;
    budgets_list => BudgetsList {} -> Vec<Budget>;
    /// Sets (both empty or None: removes) a budget, in USD as typed.
    budgets_set => BudgetsSet { endpoint: Option<String>, daily: Option<String>, monthly: Option<String> } -> Vec<Budget>;
    /// An endpoint's price timeline (its base price, then dated prices).
    prices_list => PricesList { endpoint: String } -> Vec<PriceEntry>;
    /// A dated price, as typed: `from` a date, an RFC 3339 time or `now`; USD per 1M tokens
    /// (`cached` empty: the input price).
    prices_set => PricesSet { endpoint: String, from: String, input: String, cached: String, output: String } -> Vec<PriceEntry>;
    /// Costs calls in `[since, until)` again with the price in force when each was made, as
    /// typed (`since`: 30d, a date or an RFC 3339 time; `until` empty: now); `apply` false
    /// previews the change and writes nothing.
    prices_recompute => PricesRecompute { since: String, until: String, apply: bool } -> Recomputation;
    alert_settings_get => AlertSettingsGet {} -> AlertSettings;
    alert_settings_set => AlertSettingsSet { settings: AlertSettings } -> AlertSettings;
    /// Days call bodies and history entries are kept (None: for ever).
    retention_get => RetentionGet {} -> Option<u32>;
    /// Sets the retention and applies it; answers (bodies, history entries) emptied now.
    retention_set => RetentionSet { days: Option<u32> } -> (u64, u64);

    /// The window is interactive (start-up time goes to the log).
    routes_list => RoutesList {} -> Vec<Route>;
    routes_set_weight => RoutesSetWeight { route: String, arm: String, weight: f64 } -> Route;
    routes_rollback => RoutesRollback { route: String, reason: String } -> Route;
    routes_promote => RoutesPromote { route: String, reason: String } -> Route;
    canary_status => CanaryStatusGet { route: String } -> CanaryStatus;
    gateway_keys_list => GatewayKeysList {} -> Vec<GatewayKey>;
    gateway_keys_create => GatewayKeysCreate { name: String, rate_per_min: Option<u32>, daily_budget: Option<String> } -> NewGatewayKey;
    gateway_keys_revoke => GatewayKeysRevoke { name: String } -> ();
    gateway_start => GatewayStart { listen: String } -> GatewayInfo;
    gateway_stop => GatewayStop {} -> ();
    gateway_state => GatewayState {} -> Option<GatewayInfo>;
    /// This database's OpenTelemetry export (`None`: off).
    otel_get => OtelGet {} -> Option<OtelSettings>;
    /// Sets the export: the collector's URL and its headers (values to the keyring).
    otel_set => OtelSet { change: OtelChange } -> OtelSettings;
    /// Turns the export off and removes the header values from the keyring.
    otel_clear => OtelClear {} -> ();
    /// The settings and this process's exported and dropped span counts.
    otel_status => OtelStatusGet {} -> OtelStatus;
    usecases_list => UsecasesList {} -> Vec<UseCase>;
    /// Writes a use case down (`name` None) or replaces use case `name`'s spec.
    usecases_save => UsecasesSave { name: Option<String>, spec: UseCaseSpec } -> UseCase;
    /// Adds a candidate (its prompt pinned to the version it names now); `choose` makes it the
    /// one the card is checked on.
    usecases_candidate => UsecasesCandidate { usecase: String, candidate: CandidateSpec, choose: bool } -> UseCase;
    usecases_choose => UsecasesChoose { usecase: String, id: i64 } -> UseCase;
    usecases_attach_run => UsecasesAttachRun { usecase: String, id: i64 } -> UseCase;
    usecases_attach_loadtest => UsecasesAttachLoadtest { usecase: String, id: i64 } -> UseCase;
    loadtests_list => LoadtestsList {} -> Vec<LoadTest>;
    /// Runs a load test; progress arrives on `on_progress`. [`LoadtestCancel`] stops it (the
    /// levels done so far are kept).
    loadtest_run => LoadtestRun { spec: LoadTestSpec, on_progress: ChannelId<LoadTestProgress> } -> LoadTest;
    loadtest_cancel => LoadtestCancel {} -> ();
    drift_report => DriftReportGet { query: DriftQuery } -> DriftReport;
    schedules_list => SchedulesList {} -> Vec<Schedule>;
    /// Deprecated and retired endpoints with their sunset, replacement and remaining traffic.
    retirement_list => RetirementList {} -> Vec<RetirementEntry>;
    /// Everything that still refers to an endpoint, and its recent calls by source.
    endpoint_used_by => EndpointUsedBy { name: String } -> UsedBy;
    /// Moves an endpoint through its lifecycle; retiring one still referenced (or bringing a
    /// retired one back) is refused, listing what breaks, unless `force`.
    endpoint_lifecycle => EndpointLifecycleSet { name: String, lifecycle: Lifecycle, force: bool } -> UsedBy;
    /// Writes a compliance archive of `scope` to `path` (empty: the downloads folder); (rows
    /// done, total) arrive on `on_progress`.
    archive_create => ArchiveCreate { scope: ArchiveScope, path: String, on_progress: ChannelId<(u64, u64)> } -> ArchiveReport;
    demo_state => DemoStateGet {} -> crate::demo::DemoState;
    demo_load => DemoLoad {} -> crate::demo::Sample;
    demo_remove => DemoRemove {} -> ();
    ui_ready => UiReady {} -> ();
    /// Which store the window has open and who is acting.
    whoami => WhoAmI {} -> crate::workspace::Identity;
    /// Records this window's writes as `name` from now on (kept for the next start).
    author_set => AuthorSet { name: String } -> crate::workspace::Identity;
    /// Opens team workspace `workspace` on `url` (its password, if given, goes to the OS
    /// keyring): checked first, then the window reopens on it.
    workspace_open => WorkspaceOpen { url: String, workspace: String, password: Option<String> } -> ();
    /// Goes back to the local file: the window reopens on it.
    workspace_local => WorkspaceLocal {} -> ();
    /// Who changed what, newest first.
    activity_list => ActivityList { limit: u32 } -> Vec<crate::workspace::Activity>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_the_snake_case_command_names_and_unique() {
        assert_eq!(EndpointsSave::NAME, "endpoints_save");
        assert_eq!(CompareSideBySide::NAME, "compare_side_by_side");
        let mut names = ALL_COMMANDS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL_COMMANDS.len());
        assert!(ALL_COMMANDS.contains(&UiReady::NAME));
    }

    #[test]
    fn requests_serialize_to_the_argument_maps_tauri_expects() {
        let save = EndpointsSave {
            id: None,
            spec: EndpointSpec::new("a", "http://x/v1", "m"),
            token: TokenChange::Keep,
        };
        let wire = serde_json::to_value(&save).unwrap();
        assert_eq!(wire["id"], json!(null));
        assert_eq!(wire["token"], json!({"action": "keep"}));
        assert_eq!(
            wire["spec"]["base_url"], "http://x/v1",
            "inner types keep their names"
        );
        assert_eq!(serde_json::to_value(EndpointsList {}).unwrap(), json!({}));
        let run = RunsExecute {
            id: 7,
            on_progress: ChannelId::new("__CHANNEL__:3"),
        };
        assert_eq!(
            serde_json::to_value(&run).unwrap(),
            json!({"id": 7, "onProgress": "__CHANNEL__:3"})
        );
        assert_eq!(
            serde_json::to_value(BudgetsSet {
                endpoint: None,
                daily: Some("1".into()),
                monthly: None
            })
            .unwrap(),
            json!({"endpoint": null, "daily": "1", "monthly": null})
        );
    }

    #[test]
    fn item_numbers_of_a_dataset_edit_travel_as_json_object_keys() {
        let mut edit = DatasetEdit {
            base: "qa@abc".into(),
            ..DatasetEdit::default()
        };
        edit.set.insert(3, "{}".into());
        let wire = serde_json::to_value(DatasetsEdit { edit }).unwrap();
        assert_eq!(wire["edit"]["set"], json!({"3": "{}"}));
    }

    #[test]
    fn an_otel_header_value_travels_to_the_shell_but_never_shows_in_debug() {
        let set = OtelSet {
            change: OtelChange {
                endpoint: "http://127.0.0.1:4318".into(),
                headers: [("authorization".into(), TokenChange::Keep)].into(),
            },
        };
        assert_eq!(
            serde_json::to_value(&set).unwrap(),
            json!({"change": {"endpoint": "http://127.0.0.1:4318",
                              "headers": {"authorization": {"action": "keep"}}}})
        );
        assert_eq!(OtelStatusGet::NAME, "otel_status");
        let set = OtelSet {
            change: OtelChange {
                endpoint: "http://c".into(),
                headers: [(
                    "authorization".into(),
                    TokenChange::Replace("canary-otel-5".into()),
                )]
                .into(),
            },
        };
        assert!(!format!("{set:?}").contains("canary"));
    }

    #[test]
    fn a_token_in_a_request_never_shows_in_debug() {
        let save = EndpointsSave {
            id: Some(1),
            spec: EndpointSpec::new("a", "http://x/v1", "m"),
            token: TokenChange::Replace("canary-api-77".into()),
        };
        assert!(!format!("{save:?}").contains("canary"));
    }
}
