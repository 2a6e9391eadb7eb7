//! Reading PEM files (with `rustls-pki-types`) and writing them safely.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rcgen::KeyPair;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{CertError, Result};

/// Reads the first certificate of a PEM file.
pub fn read_cert_der(path: &Path) -> Result<CertificateDer<'static>> {
    CertificateDer::from_pem_file(path).map_err(|source| CertError::Pem {
        path: path.to_path_buf(),
        kind: "certificate",
        source,
    })
}

/// Reads the first private key of a PEM file into an rcgen key pair.
pub fn read_key_pair(path: &Path) -> Result<KeyPair> {
    let der = PrivateKeyDer::from_pem_file(path).map_err(|source| CertError::Pem {
        path: path.to_path_buf(),
        kind: "private key",
        source,
    })?;
    KeyPair::try_from(&der).map_err(|source| CertError::Key {
        what: path.display().to_string(),
        source,
    })
}

/// How a written file may be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Certificates: readable by everyone (0644).
    Public,
    /// Private keys: owner only (0600).
    Private,
}

impl Mode {
    fn bits(self) -> u32 {
        match self {
            Mode::Public => 0o644,
            Mode::Private => 0o600,
        }
    }
}

/// Writes `contents` to `path` atomically (temporary file in the same directory, then
/// rename), with the permissions of `mode`. The parent directory is created if missing.
pub fn write_atomic(path: &Path, contents: &str, mode: Mode) -> Result<()> {
    let write_err = |source| CertError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir).map_err(|source| CertError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pem".to_owned());
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode.bits())
            .open(&tmp)?;
        // The mode given to open() is filtered by the umask; set it explicitly.
        file.set_permissions(fs::Permissions::from_mode(mode.bits()))?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(write_err)
}
