//! `lakegate credentials`: the `credential_process` helper. Reads a grant's token from a file
//! only its owner can read, asks the credentials URL for `credential_process` JSON, checks it,
//! and prints it. The token never appears in a command line (`ps` shows every process's argv).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

/// What the AWS CLI and SDKs expect from a `credential_process` (Version 1).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code, reason = "read only to check the answer before printing it")]
struct ProcessCredentials {
    version: u8,
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    expiration: String,
}

/// Where the token of request `id` lives unless `--token-file` says otherwise:
/// `$XDG_CONFIG_HOME/lakegate/<id>.token`, or `~/.config/lakegate/<id>.token`.
pub fn default_token_file(id: &str) -> anyhow::Result<PathBuf> {
    Ok(config_dir()?.join(format!("{id}.token")))
}

fn home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .context("HOME is not set; give --token-file")
}

/// `~/…` as a shell would read it: `credential_process` runs without a shell.
pub fn expand_home(path: &Path) -> anyhow::Result<PathBuf> {
    match path.strip_prefix("~") {
        Ok(rest) => Ok(home()?.join(rest)),
        Err(_) => Ok(path.to_owned()),
    }
}

/// The request id at the end of a credentials URL (`…/credentials/<id>`).
fn request_id_of(url: &reqwest::Url) -> anyhow::Result<String> {
    let mut segments = url
        .path_segments()
        .context("the credentials URL has no path")?;
    match (segments.next(), segments.next(), segments.next()) {
        (Some("credentials"), Some(id), None) if !id.is_empty() => Ok(id.to_owned()),
        _ => bail!(
            "{url} is not a lakegate credentials URL (…/credentials/<request id>): copy it from the credentials page"
        ),
    }
}

/// The grant's token in `path`, refused unless only its owner can read or write it.
pub fn read_token(path: &Path) -> anyhow::Result<String> {
    read_secret_file(
        path,
        "save the token from the credentials page there first, or run `lakegate env <request id>`",
    )
}

/// The one token in `path`, refused unless only its owner can read or write it; `missing`
/// says what to do when there is no such file.
pub fn read_secret_file(path: &Path, missing: &str) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the token file {}: {missing}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", path.display());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "the token file {} is readable by others (mode {mode:04o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!("the token file {} is empty", path.display());
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!(
            "the token file {} holds more than one token",
            path.display()
        );
    }
    Ok(token.to_owned())
}

/// Writes `secret` to `path` so that only its owner can read it (mode 0600, in a directory of
/// mode 0700 made if missing), replacing what was there.
pub fn write_secret_file(path: &Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .with_context(|| format!("cannot make {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        // An existing file keeps its mode through `open`: narrow it.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(format!("{secret}\n").as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// `$XDG_CONFIG_HOME/lakegate`, or `~/.config/lakegate`.
pub fn config_dir() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => home()?.join(".config"),
    };
    Ok(base.join("lakegate"))
}

/// Fetches `credential_process` JSON for the grant behind `url` and returns it as received,
/// once it is known to be what the AWS tools read.
pub async fn fetch(url: &str, token_file: Option<&Path>) -> anyhow::Result<String> {
    let mut url = reqwest::Url::parse(url).with_context(|| format!("`{url}` is not a URL"))?;
    if !matches!(url.scheme(), "https" | "http") {
        bail!("the credentials URL must be http(s)");
    }
    let id = request_id_of(&url)?;
    let path = match token_file {
        Some(p) => expand_home(p)?,
        None => default_token_file(&id)?,
    };
    let token = read_token(&path)?;
    url.query_pairs_mut()
        .clear()
        .append_pair("format", "process");
    let res = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?
        .get(url.clone())
        .header(reqwest::header::AUTHORIZATION, token)
        .send()
        .await
        .with_context(|| format!("{} did not answer", redact(&url)))?;
    let status = res.status();
    let body = res.text().await.unwrap_or_default();
    if !status.is_success() {
        // lakegate's errors carry a message that says what to do.
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| body.chars().take(200).collect());
        bail!("{} answered {status}: {message}", redact(&url));
    }
    let parsed: ProcessCredentials = serde_json::from_str(&body).with_context(|| {
        format!(
            "{} did not answer with credential_process JSON",
            redact(&url)
        )
    })?;
    if parsed.version != 1 {
        bail!("unsupported credential_process version {}", parsed.version);
    }
    Ok(body)
}

/// The URL without its query (never carries secrets here, but stays short in messages).
fn redact(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_id_comes_from_the_url() {
        let url = reqwest::Url::parse("https://lakegate.example/credentials/abc-123").unwrap();
        assert_eq!(request_id_of(&url).unwrap(), "abc-123");
        let url = reqwest::Url::parse("https://lakegate.example/requests/abc").unwrap();
        assert!(request_id_of(&url).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_token_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("lakegate-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.token");
        std::fs::write(&path, "lgt_abc\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_token(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_token(&path).unwrap(), "lgt_abc");
        std::fs::write(&path, "lgt_a lgt_b").unwrap();
        assert!(read_token(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_leading_tilde_is_the_home_directory() {
        let home = home().unwrap();
        assert_eq!(
            expand_home(Path::new("~/.config/lakegate/x.token")).unwrap(),
            home.join(".config/lakegate/x.token")
        );
        assert_eq!(
            expand_home(Path::new("/etc/x")).unwrap(),
            PathBuf::from("/etc/x")
        );
    }
}
