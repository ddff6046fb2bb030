//! GA4GH TES v1.1 JSON types (`openapi/task_execution_service.openapi.yaml`, v1.1.0).
//!
//! Written here rather than taken from the `tes` crate (0.11): that crate needs edition
//! 2024 / Rust 1.88 (we support 1.85), and its response types use `serde(untagged)`,
//! which we rule out for types we read (an untagged enum turns a schema mismatch
//! into "data did not match any variant" instead of naming the field). These ~250 lines
//! are plain structs whose field names are the schema's, so the JSON is the schema.
//!
//! Reading is lenient in the way the schema allows: unknown fields are ignored and
//! optional fields default. Writing omits absent optionals, so a MINIMAL view is just
//! `{"id":…,"state":…}`. Not here: validation (the worker's `api` module) and HTTP.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `tesState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    #[default]
    Unknown,
    Queued,
    Initializing,
    Running,
    Paused,
    Complete,
    ExecutorError,
    SystemError,
    Canceled,
    Canceling,
    Preempted,
}

impl State {
    /// Every state, in schema order.
    #[cfg(any(feature = "worker", test))]
    pub(crate) const ALL: [State; 11] = [
        State::Unknown,
        State::Queued,
        State::Initializing,
        State::Running,
        State::Paused,
        State::Complete,
        State::ExecutorError,
        State::SystemError,
        State::Canceled,
        State::Canceling,
        State::Preempted,
    ];

    /// The wire name, e.g. `EXECUTOR_ERROR`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "UNKNOWN",
            State::Queued => "QUEUED",
            State::Initializing => "INITIALIZING",
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Complete => "COMPLETE",
            State::ExecutorError => "EXECUTOR_ERROR",
            State::SystemError => "SYSTEM_ERROR",
            State::Canceled => "CANCELED",
            State::Canceling => "CANCELING",
            State::Preempted => "PREEMPTED",
        }
    }

    /// Parses a wire name (as in the `state` query parameter).
    #[cfg(any(feature = "worker", test))]
    pub(crate) fn parse(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// True once the task will never change state again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Complete
                | State::ExecutorError
                | State::SystemError
                | State::Canceled
                | State::Preempted
        )
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `tesFileType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum FileType {
    #[default]
    File,
    Directory,
}

/// `view` query parameter of GetTask / ListTasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum View {
    /// `id` and `state` only (the schema's default).
    #[default]
    Minimal,
    /// Everything except executor stdout/stderr, input `content` and system logs.
    Basic,
    /// Everything.
    Full,
}

/// `tesTask`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Task {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Input>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<Output>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Required by the schema; `default` so a missing list is reported by validation
    /// with a clear message rather than by serde.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub executors: Vec<Executor>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<TaskLog>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<String>,
}

/// `tesInput`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Input {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Absolute path in the container.
    pub path: String,
    #[serde(default, rename = "type")]
    pub(crate) file_type: FileType,
    /// Inline UTF-8 content; overrides `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) streamable: Option<bool>,
}

/// `tesOutput`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Output {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    pub url: String,
    /// Absolute path in the container.
    pub(crate) path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) path_prefix: Option<String>,
    #[serde(default, rename = "type")]
    pub(crate) file_type: FileType,
}

/// `tesResources`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) preemptible: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ram_gb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) disk_gb: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) zones: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub backend_parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) backend_parameters_strict: Option<bool>,
}

/// `tesExecutor`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Executor {
    pub image: String,
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_error: Option<bool>,
}

/// `tesTaskLog`: one attempt at running the task.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskLog {
    #[serde(default)]
    pub logs: Vec<ExecutorLog>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default)]
    pub outputs: Vec<OutputFileLog>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system_logs: Vec<String>,
}

/// `tesExecutorLog`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExecutorLog {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    pub exit_code: i32,
}

/// `tesOutputFileLog`. `size_bytes` is a string in the schema (an int64 as text).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OutputFileLog {
    pub url: String,
    pub path: String,
    pub size_bytes: String,
}

/// `tesCreateTaskResponse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CreateTaskResponse {
    pub(crate) id: String,
}

/// `tesListTasksResponse`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ListTasksResponse {
    pub tasks: Vec<Task>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `tesServiceInfo` (GA4GH service-info plus the TES extras).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub(crate) id: String,
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) service_type: ServiceType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    pub(crate) organization: Organization,
    #[serde(
        default,
        rename = "contactUrl",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) contact_url: Option<String>,
    #[serde(
        default,
        rename = "documentationUrl",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) documentation_url: Option<String>,
    #[serde(default, rename = "createdAt", skip_serializing_if = "Option::is_none")]
    pub(crate) created_at: Option<String>,
    #[serde(default, rename = "updatedAt", skip_serializing_if = "Option::is_none")]
    pub(crate) updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) environment: Option<String>,
    pub(crate) version: String,
    /// Storage URL prefixes this service can read and write.
    #[serde(default)]
    pub storage: Vec<String>,
    #[serde(default, rename = "tesResources_backend_parameters")]
    pub(crate) tes_resources_backend_parameters: Vec<String>,
}

/// GA4GH service type (`org.ga4gh` / `tes` / `1.1.0`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct ServiceType {
    pub(crate) group: String,
    pub(crate) artifact: String,
    pub(crate) version: String,
}

/// Who runs the service.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct Organization {
    pub(crate) name: String,
    pub(crate) url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_task_serializes_to_id_and_state_only() {
        let task = Task {
            id: Some("t1".into()),
            state: Some(State::ExecutorError),
            ..Task::default()
        };
        let json = serde_json::to_value(&task).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "t1", "state": "EXECUTOR_ERROR"})
        );
    }

    #[test]
    fn schema_example_task_reads() {
        let json = r#"{
            "name": "prove", "tags": {"k": "v"}, "unknown_field": 1,
            "inputs": [{"url": "s3://b/cas/sha256/ab", "path": "/work/in/x", "type": "FILE"}],
            "outputs": [{"url": "s3://b/o", "path": "/work/out", "type": "DIRECTORY"}],
            "resources": {"cpu_cores": 4, "ram_gb": 8.5},
            "executors": [{"image": "bb:5", "command": ["bb", "prove"], "env": {"A": "1"}}]
        }"#;
        let task: Task = serde_json::from_str(json).unwrap();
        assert_eq!(task.inputs[0].file_type, FileType::File);
        assert_eq!(task.outputs[0].file_type, FileType::Directory);
        assert_eq!(task.resources.unwrap().ram_gb, Some(8.5));
        assert_eq!(task.executors[0].command, ["bb", "prove"]);
        assert_eq!(task.tags["k"], "v");
    }

    #[test]
    fn state_names_round_trip() {
        for state in State::ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(State::parse(state.as_str()), Some(state));
        }
        assert_eq!(State::parse("DONE"), None);
    }

    #[test]
    fn bad_state_is_an_error_naming_the_value() {
        let err = serde_json::from_str::<State>("\"DONE\"").unwrap_err();
        assert!(err.to_string().contains("DONE"), "{err}");
    }
}
