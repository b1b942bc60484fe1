//! Packs: the shipped collection in themed parts, built into the binary, and which of them are
//! served.
//!
//! Each pack is a folder `data/packs/<id>/` with a `pack.toml` (`id`, `title`, `description`) and
//! an `insights.toml` in the data-file format (docs/curation.md). Both files are compiled in with
//! `include_str!` ([`BUILTIN_PACKS`]): an installed binary reads no file at run time, and a pack
//! cannot go missing beside it. Their problems are still reported as `file:line: reason` under
//! the folder's path (`data/packs/feedback/pack.toml (built in):2: …`), like any data file's,
//! since an editor of the library meets them at the next start or `insight-bot check`.
//!
//! Which packs are served is the operator's choice ([`PackSelection`], `INSIGHTS_PACKS`), and then
//! each server's (`/insights packs`, stored as the packs it turned off). Every built-in pack is
//! always loaded and validated, whatever the selection: ids stay unique across the whole library
//! (an operator's file cannot reuse an id of a pack that is merely not selected today), and
//! selecting another pack later can never make a valid setup fail.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::library::{FileCheck, LineIndex, Problem};

/// A pack as compiled into the binary: its id (the folder's name) and its two files' text.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinPack {
    pub id: &'static str,
    pub pack_toml: &'static str,
    pub insights_toml: &'static str,
}

impl BuiltinPack {
    /// The name `pack.toml`'s problems are reported under.
    pub fn pack_file(&self) -> PathBuf {
        PathBuf::from(format!("data/packs/{}/pack.toml (built in)", self.id))
    }

    /// The name `insights.toml`'s problems (and duplicate ids) are reported under.
    pub fn insights_file(&self) -> PathBuf {
        PathBuf::from(format!("data/packs/{}/insights.toml (built in)", self.id))
    }
}

macro_rules! pack {
    ($id:literal) => {
        BuiltinPack {
            id: $id,
            pack_toml: include_str!(concat!("../../data/packs/", $id, "/pack.toml")),
            insights_toml: include_str!(concat!("../../data/packs/", $id, "/insights.toml")),
        }
    };
}

/// Every built-in pack, in the order they are listed and loaded. The seed page comes first, so
/// equal scores and listings keep the order the seed collection always had. A folder under
/// `data/packs/` that is not listed here is caught by a test (`every_pack_folder_is_built_in`).
pub const BUILTIN_PACKS: &[BuiltinPack] = &[
    pack!("ic-and-management"),
    pack!("one-on-ones"),
    pack!("feedback"),
    pack!("hiring"),
    pack!("onboarding"),
    pack!("performance-and-growth"),
    pack!("conflict-and-hard-conversations"),
    pack!("team-health"),
    pack!("meetings-and-communication"),
    pack!("priorities-and-managing-up"),
    pack!("resignations-reorgs-layoffs"),
];

/// The pack the seed page (the first shipped collection) became: the relevance tests tuned on it
/// serve it alone.
pub const SEED_PACK: &str = "ic-and-management";

/// The longest pack title: it is a button's label in `/insights packs` (Discord allows 80).
pub const MAX_PACK_TITLE_CHARS: usize = 80;
/// The longest description: one line of a listing.
pub const MAX_PACK_DESCRIPTION_CHARS: usize = 200;

/// A pack's description, from its `pack.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pack {
    pub id: &'static str,
    pub title: String,
    pub description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPack {
    id: Option<Spanned<String>>,
    title: Option<Spanned<String>>,
    description: Option<Spanned<String>>,
}

/// Parses and checks one `pack.toml`; every problem is reported to `check`, and the pack is
/// returned only when it has none.
fn check_pack(pack: &BuiltinPack, check: &mut FileCheck) -> Option<Pack> {
    let raw: RawPack = match toml::from_str(pack.pack_toml) {
        Ok(raw) => raw,
        Err(e) => {
            // serde's message names an unknown field and lists the known ones, which is what
            // an editor needs; `deny_unknown_fields` is fine here since a pack.toml has three
            // keys (an insights file keeps going to report every problem).
            check.report(
                e.span().unwrap_or(0..0),
                format!("invalid pack.toml: {}", e.message().trim()),
            );
            return None;
        }
    };
    let before = check.problems.len();
    let mut field = |value: &Option<Spanned<String>>, name: &str, limit: usize| -> String {
        let Some(value) = value else {
            check.report(0..0, format!("pack.toml is missing the `{name}` field"));
            return String::new();
        };
        let text = value.get_ref().trim();
        let span: Range<usize> = value.span();
        let chars = text.chars().count();
        if text.is_empty() {
            check.report(span, format!("`{name}` is empty"));
        } else if chars > limit {
            check.report(
                span,
                format!("`{name}` is {chars} characters long; the limit is {limit}"),
            );
        } else if text.contains('\n') {
            check.report(span, format!("`{name}` must be one line"));
        }
        text.to_string()
    };
    let id = field(&raw.id, "id", super::MAX_ID_CHARS);
    let title = field(&raw.title, "title", MAX_PACK_TITLE_CHARS);
    let description = field(&raw.description, "description", MAX_PACK_DESCRIPTION_CHARS);
    if let Some(span) = raw.id.as_ref().map(Spanned::span) {
        if !id.is_empty() && id != pack.id {
            check.report(
                span,
                format!(
                    "`id` is {id:?} but the pack's folder is {:?}: they must be the same",
                    pack.id
                ),
            );
        }
    }
    (check.problems.len() == before).then_some(Pack {
        id: pack.id,
        title,
        description,
    })
}

/// Every built-in pack's description, or every problem of their `pack.toml` files.
pub fn builtin_packs() -> Result<Vec<Pack>, Vec<Problem>> {
    let mut packs = Vec::with_capacity(BUILTIN_PACKS.len());
    let mut problems = Vec::new();
    for pack in BUILTIN_PACKS {
        let mut check = FileCheck {
            file: pack.pack_file(),
            lines: LineIndex::new(pack.pack_toml),
            problems: Vec::new(),
        };
        packs.extend(check_pack(pack, &mut check));
        problems.append(&mut check.problems);
    }
    if problems.is_empty() {
        Ok(packs)
    } else {
        Err(problems)
    }
}

/// The description of built-in pack `id` (`None` for an unknown id, or a pack whose `pack.toml`
/// does not load, which start-up has already refused).
pub fn describe(id: &str) -> Option<Pack> {
    static PACKS: std::sync::OnceLock<Vec<Pack>> = std::sync::OnceLock::new();
    PACKS
        .get_or_init(|| builtin_packs().unwrap_or_default())
        .iter()
        .find(|p| p.id == id)
        .cloned()
}

/// The built-in pack with this id.
pub fn builtin(id: &str) -> Option<&'static BuiltinPack> {
    BUILTIN_PACKS.iter().find(|p| p.id == id)
}

/// Which built-in packs the program serves (`INSIGHTS_PACKS`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PackSelection {
    /// Every built-in pack (the default).
    #[default]
    All,
    /// These packs only, each a known id, in [`BUILTIN_PACKS`] order, no repeats.
    Only(Vec<&'static str>),
}

impl PackSelection {
    /// Reads `all` or comma-separated pack ids (spaces and case forgiven). An unknown id is an
    /// error naming every known one, so the fix is in the message.
    pub fn parse(text: &str) -> Result<PackSelection, String> {
        let wanted: Vec<String> = text
            .split(',')
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        if wanted.is_empty() {
            return Err(format!(
                "{text:?} names no pack: use all (the default) or pack ids separated by commas: {}",
                known_ids()
            ));
        }
        if wanted.iter().any(|w| w == "all") {
            return if wanted.len() == 1 {
                Ok(PackSelection::All)
            } else {
                Err(format!(
                    "{text:?} mixes all with pack ids: use all alone, or list the packs"
                ))
            };
        }
        let unknown: Vec<&str> = wanted
            .iter()
            .filter(|w| builtin(w).is_none())
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "unknown pack{} {}: the packs are {}",
                if unknown.len() == 1 { "" } else { "s" },
                unknown
                    .iter()
                    .map(|u| format!("{u:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                known_ids()
            ));
        }
        Ok(PackSelection::Only(
            BUILTIN_PACKS
                .iter()
                .map(|p| p.id)
                .filter(|id| wanted.iter().any(|w| w == id))
                .collect(),
        ))
    }

    /// Only the packs named, for tests and benches; unknown ids are an error.
    pub fn only(ids: &[&str]) -> Result<PackSelection, String> {
        PackSelection::parse(&ids.join(","))
    }

    pub fn includes(&self, id: &str) -> bool {
        match self {
            PackSelection::All => true,
            PackSelection::Only(ids) => ids.contains(&id),
        }
    }
}

impl fmt::Display for PackSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackSelection::All => f.write_str("all"),
            PackSelection::Only(ids) => f.write_str(&ids.join(",")),
        }
    }
}

fn known_ids() -> String {
    BUILTIN_PACKS
        .iter()
        .map(|p| p.id)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pack_folder_is_built_in_and_every_built_in_pack_is_a_folder() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/packs");
        let mut folders: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        folders.sort();
        let mut built_in: Vec<String> = BUILTIN_PACKS.iter().map(|p| p.id.to_string()).collect();
        built_in.sort();
        assert_eq!(folders, built_in);
    }

    #[test]
    fn every_pack_toml_loads_with_its_folder_as_id() {
        let packs = builtin_packs().unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(packs.len(), BUILTIN_PACKS.len());
        assert_eq!(packs[0].id, SEED_PACK);
        assert_eq!(packs[0].title, "From IC to manager and back");
        assert!(packs.iter().all(|p| !p.description.is_empty()));
        assert_eq!(
            describe("feedback").unwrap().title,
            "Giving and receiving feedback"
        );
        assert!(describe("nope").is_none());
    }

    fn problems_of(pack_toml: &'static str) -> Vec<String> {
        let pack = BuiltinPack {
            id: "feedback",
            pack_toml,
            insights_toml: "",
        };
        let mut check = FileCheck {
            file: pack.pack_file(),
            lines: LineIndex::new(pack_toml),
            problems: Vec::new(),
        };
        let found = check_pack(&pack, &mut check);
        assert_eq!(found.is_some(), check.problems.is_empty());
        check.problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_bad_pack_toml_is_reported_with_file_line_and_reason() {
        assert_eq!(
            problems_of("id = \"feedback\"\ntitle = \"\"\ndescription = \"x\"\n"),
            ["data/packs/feedback/pack.toml (built in):2: `title` is empty"]
        );
        assert_eq!(
            problems_of("id = \"other\"\ntitle = \"T\"\ndescription = \"x\"\n"),
            ["data/packs/feedback/pack.toml (built in):1: `id` is \"other\" but the pack's folder is \"feedback\": they must be the same"]
        );
        let missing = problems_of("id = \"feedback\"\ntitle = \"T\"\n");
        assert_eq!(
            missing,
            ["data/packs/feedback/pack.toml (built in):1: pack.toml is missing the `description` field"]
        );
        let typo = problems_of("id = \"feedback\"\ntitle = \"T\"\ndescripton = \"x\"\n");
        assert_eq!(typo.len(), 1);
        assert!(
            typo[0].starts_with("data/packs/feedback/pack.toml (built in):3: invalid pack.toml: unknown field `descripton`"),
            "{typo:?}"
        );
        let long = "t".repeat(81);
        let text: &'static str = Box::leak(
            format!("id = \"feedback\"\ntitle = \"{long}\"\ndescription = \"x\"\n")
                .into_boxed_str(),
        );
        assert!(problems_of(text)[0].contains("`title` is 81 characters long; the limit is 80"));
    }

    #[test]
    fn a_selection_is_all_or_known_ids_and_an_unknown_one_names_the_known_ones() {
        assert_eq!(PackSelection::parse("all"), Ok(PackSelection::All));
        assert_eq!(PackSelection::parse(" ALL "), Ok(PackSelection::All));
        assert_eq!(
            PackSelection::parse("hiring, Feedback,hiring"),
            Ok(PackSelection::Only(vec!["feedback", "hiring"]))
        );
        let unknown = PackSelection::parse("feedback,hirng").unwrap_err();
        assert!(
            unknown.starts_with(
                "unknown pack \"hirng\": the packs are ic-and-management, one-on-ones, feedback"
            ),
            "{unknown}"
        );
        assert!(unknown.contains("resignations-reorgs-layoffs"), "{unknown}");
        assert!(PackSelection::parse(" , ")
            .unwrap_err()
            .contains("names no pack"));
        assert!(PackSelection::parse("all,hiring")
            .unwrap_err()
            .contains("mixes all"));
        let only = PackSelection::only(&["hiring"]).unwrap();
        assert!(only.includes("hiring") && !only.includes("feedback"));
        assert!(PackSelection::All.includes("feedback"));
        assert_eq!(only.to_string(), "hiring");
    }
}
