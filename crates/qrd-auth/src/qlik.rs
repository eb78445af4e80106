//! What the Qlik Sense deployment guide says about passwords, beyond the server: which characters its
//! services choke on, and every place a site keeps a copy of a password that changed.

/// The guide's troubleshooting: Qlik's services fail to connect when the user name or password mixes
/// character sets. We call a text mixed when its characters come from more than one of: ASCII, other
/// Latin, Greek, Cyrillic, CJK, anything else.
pub fn mixes_character_sets(s: &str) -> bool {
    let class = |c: char| match c as u32 {
        0..=0x7f => 0,
        0x80..=0x24f | 0x1e00..=0x1eff => 1,
        0x370..=0x3ff => 2,
        0x400..=0x52f => 3,
        0x3040..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xac00..=0xd7af => 4,
        _ => 5,
    };
    let mut seen = [false; 6];
    s.chars().for_each(|c| seen[class(c)] = true);
    seen.iter().filter(|s| **s).count() > 1
}

/// Where a Qlik site keeps a copy of `role`'s password: after a change, each must be updated or the
/// services cannot connect. The repository role (`repo_role`) is in every node's connection string.
pub fn qlik_followups(role: &str, repo_role: &str) -> Vec<String> {
    if role != repo_role {
        return vec![
            format!("anything that logs in as {role:?}: monitoring data connections, scripts, ~/.pgpass entries"),
            "if a Qlik node or service uses this role, update its connection settings too".to_owned(),
        ];
    }
    vec![
        "on EVERY Qlik Sense node: the repository connection string, with the Connection String Editor \
         (C:\\Program Files\\Qlik\\Sense\\Repository\\Util\\QlikSenseUtil\\QlikSenseUtil.exe, run as administrator: \
         Read, change the password, Save), then restart the Qlik Sense services"
            .to_owned(),
        "the services controlled by the Service Dispatcher that connect to the databases themselves, e.g. \
         C:\\Program Files\\Qlik\\Sense\\Licenses\\appsettings.json (Licenses) and the other services' appsettings"
            .to_owned(),
        "monitoring apps' data connections (qrs_* / QLogs style connections to the repository database) and any \
         backup or monitoring job that logs in as this role"
            .to_owned(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_character_sets() {
        assert!(!mixes_character_sets("Plain-ascii_123!"));
        assert!(!mixes_character_sets("пароль"));
        assert!(mixes_character_sets("pass-пароль"));
        assert!(mixes_character_sets("Kennwort-ä"));
        assert!(!mixes_character_sets("äöüß"));
        assert!(mixes_character_sets("パスword"));
    }

    #[test]
    fn the_repository_role_gets_the_qlik_list() {
        assert!(qlik_followups("qlik_repo", "qlik_repo")[0].contains("Connection String Editor"));
        let other = qlik_followups("qliksenserepository", "qlik_repo");
        assert!(other[0].starts_with("anything that logs in as \"qliksenserepository\""), "{other:?}");
    }
}
