//! What a Qlik Sense repository server must hold, per the vendor's guide ("Creating a PostgreSQL database",
//! "Creating login roles", "Granting permissions for PostgreSQL versions 15 and 16").

/// The four databases, with their exact (case-sensitive) names.
pub const QLIK_DATABASES: [&str; 4] = ["QSR", "SenseServices", "QSMQ", "Licenses"];

/// The login role that owns them.
pub const DEFAULT_REPO_ROLE: &str = "qliksenserepository";

/// The majors qrd supports and is tested on. Qlik bundles 14.17; the guide's dedicated-server text still
/// says 12.x, and its 15/16 section adds the public-schema grants.
pub const SUPPORTED_MAJORS: std::ops::RangeInclusive<u32> = 12..=16;

/// The expectation qrd provisions and checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSpec {
    /// The repository login role (`--repo-user`).
    pub role: String,
    /// The databases (always the four Qlik names; a field so tests can see them).
    pub databases: Vec<String>,
}

impl RepoSpec {
    pub fn new(role: impl Into<String>) -> Self {
        Self { role: role.into(), databases: QLIK_DATABASES.iter().map(|d| d.to_string()).collect() }
    }

    /// The spec for the repository role named on the command line (`--repo-user`), refused when
    /// PostgreSQL could not store that name as given.
    pub fn for_role(role: &str) -> Result<Self, InvalidRepoRole> {
        crate::quote::ident(role).map_err(InvalidRepoRole)?;
        Ok(Self::new(role))
    }
}

/// A `--repo-user` PostgreSQL would refuse or truncate.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid --repo-user: {0}")]
pub struct InvalidRepoRole(pub crate::quote::QuoteError);

impl qrd_exit::UserError for InvalidRepoRole {
    fn exit_status(&self) -> qrd_exit::ExitStatus {
        qrd_exit::ExitStatus::Refused
    }

    fn hint(&self) -> Option<String> {
        Some("choose a role name of 1 to 63 bytes without NUL characters".into())
    }
}

impl Default for RepoSpec {
    fn default() -> Self {
        Self::new(DEFAULT_REPO_ROLE)
    }
}

/// Attributes the guide gives the role: `LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
/// VALID UNTIL 'infinity'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleAttrs {
    pub login: bool,
    pub inherit: bool,
    pub superuser: bool,
    pub createdb: bool,
    pub createrole: bool,
    pub replication: bool,
    /// `VALID UNTIL 'infinity'` or no expiry at all: both mean the password never expires.
    pub never_expires: bool,
}

impl RoleAttrs {
    pub const EXPECTED: RoleAttrs = RoleAttrs {
        login: true,
        inherit: false,
        superuser: false,
        createdb: false,
        createrole: false,
        replication: false,
        never_expires: true,
    };

    /// The attributes that differ from `expected`, as `(found, wanted)` keywords, e.g. `("INHERIT", "NOINHERIT")`.
    pub fn differences(&self, expected: &RoleAttrs) -> Vec<(&'static str, &'static str)> {
        let flag = |v: bool, yes: &'static str, no: &'static str| if v { yes } else { no };
        let mut out = Vec::new();
        let pairs = [
            (self.login, expected.login, "LOGIN", "NOLOGIN"),
            (self.inherit, expected.inherit, "INHERIT", "NOINHERIT"),
            (self.superuser, expected.superuser, "SUPERUSER", "NOSUPERUSER"),
            (self.createdb, expected.createdb, "CREATEDB", "NOCREATEDB"),
            (self.createrole, expected.createrole, "CREATEROLE", "NOCREATEROLE"),
            (self.replication, expected.replication, "REPLICATION", "NOREPLICATION"),
        ];
        for (found, wanted, yes, no) in pairs {
            if found != wanted {
                out.push((flag(found, yes, no), flag(wanted, yes, no)));
            }
        }
        if self.never_expires != expected.never_expires {
            out.push(("VALID UNTIL <date>", "VALID UNTIL 'infinity'"));
        }
        out
    }
}
