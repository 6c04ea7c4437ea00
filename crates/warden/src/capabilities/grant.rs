//! A capability's own operator grants: how they are written
//! (`<prefix>:<spec>`), and which of a plugin's requests they cover.

use crate::permissions::{EffectivePermissions, Permissions, Refusal};

/// The operator's grants of one capability, and its check of what a
/// plugin's manifest asks for against them. `Grants` holds one of each
/// capability that has grants, and hands it the specs with its prefix.
pub(crate) trait Grant: Send + Sync {
    /// The prefix of its grants: `http` for `http:https://api.example.com`.
    fn prefix(&self) -> &'static str;

    /// Checks one grant (what follows the prefix) and keeps it; the error
    /// says what is wrong with it.
    fn grant(&mut self, spec: &str) -> Result<(), String>;

    /// The grants kept, as written.
    fn granted(&self) -> Vec<String>;

    /// Adds to `out` what `requested` asks of this capability and the
    /// grants cover, and the rest to `refused`.
    fn apply(
        &self,
        requested: &Permissions,
        out: &mut EffectivePermissions,
        refused: &mut Vec<Refusal>,
    );

    /// A copy, for a cloned `Grants`.
    fn boxed_clone(&self) -> Box<dyn Grant>;
}

/// What a capability does with the requests its grants by name cover.
pub(crate) type ApplyByName =
    fn(&ByName, &Permissions, &mut EffectivePermissions, &mut Vec<Refusal>);

/// Grants that name things by name, `*` naming every one: shared stores
/// (`kv:`) and link providers (`link:`). The capability gives the prefix,
/// what a valid name is and how its requests are checked.
#[derive(Clone)]
pub(crate) struct ByName {
    prefix: &'static str,
    valid: fn(&str) -> Result<(), String>,
    apply: ApplyByName,
    names: Vec<String>,
}

impl ByName {
    pub(crate) fn new(
        prefix: &'static str,
        valid: fn(&str) -> Result<(), String>,
        apply: ApplyByName,
    ) -> Self {
        ByName {
            prefix,
            valid,
            apply,
            names: Vec::new(),
        }
    }

    /// Whether a grant covers `name`.
    pub(crate) fn covers(&self, name: &str) -> bool {
        self.names.iter().any(|g| g == "*" || g == name)
    }
}

impl Grant for ByName {
    fn prefix(&self) -> &'static str {
        self.prefix
    }

    fn grant(&mut self, spec: &str) -> Result<(), String> {
        if spec != "*" {
            (self.valid)(spec)?;
        }
        self.names.push(spec.to_string());
        Ok(())
    }

    fn granted(&self) -> Vec<String> {
        self.names.clone()
    }

    fn apply(
        &self,
        requested: &Permissions,
        out: &mut EffectivePermissions,
        refused: &mut Vec<Refusal>,
    ) {
        (self.apply)(self, requested, out, refused)
    }

    fn boxed_clone(&self) -> Box<dyn Grant> {
        Box::new(self.clone())
    }
}
