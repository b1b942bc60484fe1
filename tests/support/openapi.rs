//! Checks REST request bodies against Discord's official OpenAPI 3.1 description.
//!
//! The fake Discord hands every body the bot sends to [`OpenApiSpec::check`], which finds the
//! operation by method and path template (`POST /channels/{channel_id}/messages`; the spec's paths
//! are relative to `/api/v10`) and validates the body with the `jsonschema` crate against that
//! operation's JSON request-body schema (JSON Schema 2020-12). The spec is the copy kept in
//! the repository (`tests/data/discord-api-spec/`, MIT), or the file named by
//! `DISCORD_OPENAPI_SPEC` (a newer copy). Validation is always on: a spec that cannot be read fails
//! the test that needed it, saying why. It is loaded once per test binary and each operation's
//! validator is compiled on first use, then cached.
//!
//! Two known deviations of the spec from Discord are handled, and only those two: see
//! [`permission_strings_to_integers`] and [`upload_placeholders_to_strings`].
//!
//! The fake's own answers can be checked the same way against the operation's response schema
//! ([`OpenApiSpec::check_response`]), which its self-tests do for the routes they cover.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};

/// The variable naming another copy of the spec (a newer one, say) to validate against.
pub const SPEC_ENV: &str = "DISCORD_OPENAPI_SPEC";
/// The copy kept in the repository (with its MIT licence), relative to the crate root.
pub const DEFAULT_SPEC: &str = "tests/data/discord-api-spec/openapi.json";

/// Fields that the spec types as integer permission bitfields in request bodies, while Discord
/// documents (and serenity sends) them as strings of decimal digits.
const PERMISSION_FIELDS: [&str; 4] = ["default_member_permissions", "permissions", "allow", "deny"];

/// One operation of the spec: a method on a path template, with its request-body schema.
#[derive(Debug)]
struct Operation {
    method: String,
    template: String,
    segments: Vec<String>,
    /// The `application/json` request-body schema, if the operation takes a body.
    body_schema: Option<Value>,
    body_required: bool,
    /// The operation's `responses`, by status (`"200"`, `"4XX"`...).
    responses: Value,
}

impl Operation {
    /// `Some(number of literal segments)` when `segments` fits this template.
    fn fit(&self, segments: &[&str]) -> Option<usize> {
        if self.segments.len() != segments.len() {
            return None;
        }
        let mut literals = 0;
        for (want, got) in self.segments.iter().zip(segments) {
            if want.starts_with('{') && want.ends_with('}') {
                if got.is_empty() {
                    return None;
                }
            } else if want == got {
                literals += 1;
            } else {
                return None;
            }
        }
        Some(literals)
    }

    fn name(&self) -> String {
        format!("{} {}", self.method, self.template)
    }
}

/// Discord's OpenAPI description, ready to validate request bodies.
pub struct OpenApiSpec {
    path: PathBuf,
    /// `components` of the spec: every `$ref` in a request schema points into it.
    components: Value,
    operations: Vec<Operation>,
    /// Compiled validators by operation name, built on first use.
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

impl std::fmt::Debug for OpenApiSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenApiSpec")
            .field("path", &self.path)
            .field("operations", &self.operations.len())
            .finish()
    }
}

impl OpenApiSpec {
    /// Reads and indexes the spec at `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
        Self::from_document(path, doc)
    }

    fn from_document(path: &Path, mut doc: Value) -> Result<Self, String> {
        let paths = doc
            .get("paths")
            .and_then(Value::as_object)
            .ok_or("no `paths` object: not an OpenAPI document")?;
        let mut operations = Vec::new();
        for (template, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, op) in item {
                if !["get", "put", "post", "patch", "delete"].contains(&method.as_str()) {
                    continue;
                }
                let body = op.get("requestBody");
                operations.push(Operation {
                    method: method.to_ascii_uppercase(),
                    template: template.clone(),
                    segments: template
                        .trim_matches('/')
                        .split('/')
                        .map(str::to_owned)
                        .collect(),
                    body_schema: body
                        .and_then(|b| b.pointer("/content/application~1json/schema"))
                        .cloned(),
                    body_required: body
                        .and_then(|b| b.get("required"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    responses: op.get("responses").cloned().unwrap_or(Value::Null),
                });
            }
        }
        if operations.is_empty() {
            return Err("no operations under `paths`".into());
        }
        let components = doc
            .get_mut("components")
            .map(Value::take)
            .ok_or("no `components` object")?;
        Ok(Self {
            path: path.to_owned(),
            components,
            operations,
            validators: Mutex::new(HashMap::new()),
        })
    }

    /// The file this spec was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The spec: `DISCORD_OPENAPI_SPEC` when set, else the repository's copy; loaded once per
    /// test binary.
    ///
    /// # Panics
    /// When that file cannot be read or parsed: the tests never run without validation.
    pub fn from_env() -> Arc<OpenApiSpec> {
        static SPEC: OnceLock<Arc<OpenApiSpec>> = OnceLock::new();
        SPEC.get_or_init(|| {
            let (path, origin) = match std::env::var_os(SPEC_ENV) {
                Some(p) if !p.is_empty() => (PathBuf::from(p), SPEC_ENV),
                _ => (
                    Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_SPEC),
                    "the copy in the repository",
                ),
            };
            match OpenApiSpec::load(&path) {
                Ok(spec) => Arc::new(spec),
                Err(e) => panic!(
                    "OpenAPI spec {} (from {origin}): {e}. The end-to-end tests validate every \
                     request body against it and never run without it.",
                    path.display()
                ),
            }
        })
        .clone()
    }

    /// The operation for `method` and `path` (with or without the `/api/v10` prefix and query),
    /// preferring the template with the most literal segments (`.../messages/@original` over
    /// `.../messages/{message_id}`).
    fn operation(&self, method: &str, path: &str) -> Option<&Operation> {
        let path = path.split('?').next().unwrap_or_default();
        let path = path.strip_prefix("/api/v10").unwrap_or(path);
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.operations
            .iter()
            .filter(|op| op.method.eq_ignore_ascii_case(method))
            .filter_map(|op| op.fit(&segments).map(|literals| (literals, op)))
            .max_by_key(|(literals, _)| *literals)
            .map(|(_, op)| op)
    }

    /// The operation name (`"POST /channels/{channel_id}/messages"`) for a request, if the spec
    /// has one.
    pub fn operation_name(&self, method: &str, path: &str) -> Option<String> {
        self.operation(method, path).map(Operation::name)
    }

    /// Validates one request body. `Ok` carries the operation name; `Err` says what is wrong,
    /// naming the operation and each failing location.
    pub fn check(&self, method: &str, path: &str, body: Option<&Value>) -> Result<String, String> {
        let Some(op) = self.operation(method, path) else {
            return Err(format!(
                "{method} {path}: no such operation in the OpenAPI spec"
            ));
        };
        let name = op.name();
        let Some(body) = body else {
            return if op.body_required {
                Err(format!(
                    "{name}: the spec requires a request body and none was sent"
                ))
            } else {
                Ok(name)
            };
        };
        if op.body_schema.is_none() {
            // Operations without a JSON body schema (e.g. reactions) have nothing to check.
            return Ok(name);
        }
        let validator = self.validator(op)?;
        let mut instance = body.clone();
        permission_strings_to_integers(&mut instance);
        schema_problems(&validator, &instance, &name, "body", "request", body)
    }

    /// Validates one of the fake's answers: `body` against the `application/json` schema the
    /// operation documents for `status` (its exact status, else its class such as `4XX`).
    /// `Ok` carries the operation name and status; `Err` says what is wrong, or that the spec
    /// documents no JSON answer for that status.
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> Result<String, String> {
        let Some(op) = self.operation(method, path) else {
            return Err(format!(
                "{method} {path}: no such operation in the OpenAPI spec"
            ));
        };
        let name = format!("{} -> {status}", op.name());
        let mut response = op
            .responses
            .get(status.to_string())
            .or_else(|| op.responses.get(format!("{}XX", status / 100)))
            .ok_or_else(|| format!("{name}: the spec documents no such response"))?;
        if let Some(target) = response.get("$ref").and_then(Value::as_str) {
            let pointer = target
                .strip_prefix("#/components")
                .ok_or_else(|| format!("{name}: unexpected reference {target}"))?;
            response = self
                .components
                .pointer(pointer)
                .ok_or_else(|| format!("{name}: unresolved reference {target}"))?;
        }
        let schema = response
            .pointer("/content/application~1json/schema")
            .ok_or_else(|| format!("{name}: the spec documents no JSON body for it"))?;
        let validator = self.compiled(&name, schema)?;
        schema_problems(&validator, body, &name, "answer", "response", body)
    }

    fn validator(&self, op: &Operation) -> Result<Arc<jsonschema::Validator>, String> {
        let schema = op.body_schema.clone().unwrap_or(Value::Bool(true));
        self.compiled(&op.name(), &schema)
    }

    /// The validator of one schema of the spec, compiled on first use and cached under `name`.
    fn compiled(&self, name: &str, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        let name = name.to_string();
        if let Some(v) = self.validators.lock().unwrap().get(&name) {
            return Ok(v.clone());
        }
        // The schema becomes a document whose `components` are the spec's, so the spec's
        // `#/components/schemas/...` references resolve unchanged.
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": "#/$defs/checked",
            "$defs": { "checked": schema },
            "components": self.components.clone(),
        });
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            // `format` is only an annotation by default in 2020-12; Discord does reject a
            // malformed URL or timestamp, so check the formats the validator knows (`uri`,
            // `date-time`); unknown ones such as `snowflake` or `int32` are ignored.
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| format!("{name}: cannot compile the schema from the spec: {e}"))?;
        let validator = Arc::new(validator);
        self.validators
            .lock()
            .unwrap()
            .insert(name, validator.clone());
        Ok(validator)
    }
}

/// KNOWN SPEC DEVIATION, the only one accepted: Discord's OpenAPI file types the permission
/// bitfields `default_member_permissions`, `permissions`, `allow` and `deny` in request bodies as
/// integers, but Discord documents them as strings (a bitfield can exceed 2^53) and serenity
/// sends strings of decimal digits. So, in a copy of the body used only for validation, such a
/// field whose value is a non-empty string of ASCII digits (that fits a u64) becomes that integer;
/// any other value (`"abc"`, `"-1"`, `""`) is left as it is and still fails the integer schema.
/// Nothing else is rewritten or relaxed.
pub fn permission_strings_to_integers(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if PERMISSION_FIELDS.contains(&key.as_str()) {
                    if let Value::String(s) = field {
                        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                            if let Ok(n) = s.parse::<u64>() {
                                *field = Value::from(n);
                                continue;
                            }
                        }
                    }
                }
                permission_strings_to_integers(field);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(permission_strings_to_integers),
        _ => {}
    }
}

/// KNOWN SPEC DEVIATION, the second and last one accepted: a message body sent with files
/// (multipart) names each new file in `attachments` by its placeholder id, the `n` of its
/// `files[n]` part. Discord's own documentation writes that placeholder as an integer
/// (`"attachments": [{"id": 0, ...}]`), Discord accepts it, and serenity sends it so; the spec
/// types every attachment id as a snowflake string. So, in a copy of the body used only for
/// validation, an `attachments[].id` (at the top, or under `data` for an interaction callback)
/// that is an integer equal to the index of a file part actually `uploaded` with the request
/// becomes its digit string. Any other integer id (no such file uploaded, or a JSON body without
/// files) is left as it is and still fails the schema; whether the entries and the files match is
/// checked separately by the fake Discord.
pub fn upload_placeholders_to_strings(body: &mut Value, uploaded: &[u64]) {
    fn convert(list: Option<&mut Value>, uploaded: &[u64]) {
        let Some(Value::Array(entries)) = list else {
            return;
        };
        for entry in entries {
            if let Some(id) = entry.get_mut("id") {
                if let Some(n) = id.as_u64().filter(|n| uploaded.contains(n)) {
                    *id = Value::String(n.to_string());
                }
            }
        }
    }
    if uploaded.is_empty() {
        return;
    }
    convert(body.get_mut("attachments"), uploaded);
    convert(
        body.get_mut("data").and_then(|d| d.get_mut("attachments")),
        uploaded,
    );
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len())
}

/// `Ok(name)` when `instance` matches the schema, else the first eight mismatches, each with
/// where it is, and `shown` (the body as sent) cut to a readable length.
fn schema_problems(
    validator: &jsonschema::Validator,
    instance: &Value,
    name: &str,
    what: &str,
    schema: &str,
    shown: &Value,
) -> Result<String, String> {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .take(8)
        .map(|e| {
            let at = e.instance_path.to_string();
            let at = if at.is_empty() { "/".to_string() } else { at };
            format!("at {at}: {e} (schema {})", e.schema_path)
        })
        .collect();
    if errors.is_empty() {
        Ok(name.to_string())
    } else {
        Err(format!(
            "{name}: {what} does not match the OpenAPI {schema} schema:\n    {}\n  {what}: {}",
            errors.join("\n    "),
            truncate(&shown.to_string(), 1500)
        ))
    }
}
