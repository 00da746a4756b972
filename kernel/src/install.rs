//! `autoawait kernel install`: write a kernelspec (kernel.json and logos).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::json;

/// Where a kernelspec goes, as `jupyter kernelspec install` spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstallTarget {
    /// `--user`: the user's Jupyter data dir (`$JUPYTER_DATA_DIR`, else
    /// `~/.local/share/jupyter` on Linux, `~/Library/Jupyter` on macOS, `%APPDATA%\jupyter`).
    User,
    /// `--sys-prefix`: the active virtualenv or conda env (`$VIRTUAL_ENV`, `$CONDA_PREFIX`).
    SysPrefix,
    /// `--prefix P`: `P/share/jupyter/kernels`.
    Prefix(PathBuf),
}

impl InstallTarget {
    /// Parses the arguments after `kernel install`: `--user` (the default),
    /// `--sys-prefix`, `--prefix P` or `--prefix=P`.
    ///
    /// # Errors
    ///
    /// A message naming the valid choices, for anything else.
    ///
    /// # Examples
    ///
    /// ```
    /// use autoawait_kernel::InstallTarget;
    ///
    /// assert_eq!(InstallTarget::from_args(&[] as &[&str]), Ok(InstallTarget::User));
    /// assert_eq!(InstallTarget::from_args(&["--prefix", "/opt/env"]),
    ///            Ok(InstallTarget::Prefix("/opt/env".into())));
    /// assert!(InstallTarget::from_args(&["--global"]).is_err());
    /// ```
    pub fn from_args<S: AsRef<str>>(args: &[S]) -> Result<Self, String> {
        let mut target = None;
        let mut it = args.iter().map(AsRef::as_ref);
        while let Some(arg) = it.next() {
            let t = match arg {
                "--user" => InstallTarget::User,
                "--sys-prefix" => InstallTarget::SysPrefix,
                "--prefix" => match it.next() {
                    Some(p) => InstallTarget::Prefix(p.into()),
                    None => return Err("`--prefix` needs a directory: --prefix P".into()),
                },
                other => match other.strip_prefix("--prefix=") {
                    Some(p) => InstallTarget::Prefix(p.into()),
                    None => {
                        return Err(format!(
                            "unknown option `{other}` for `kernel install`; the options are `--user` (default), `--sys-prefix` and `--prefix P`"
                        ))
                    }
                },
            };
            if target.replace(t).is_some() {
                return Err(
                    "give one of `--user`, `--sys-prefix` and `--prefix P`, not several".into(),
                );
            }
        }
        Ok(target.unwrap_or(InstallTarget::User))
    }

    /// The `kernels` directory this target means.
    ///
    /// # Errors
    ///
    /// [`InstallError::NoDir`] if it cannot be determined (no home dir, no active env).
    pub fn kernels_dir(&self) -> Result<PathBuf, InstallError> {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        match self {
            InstallTarget::Prefix(p) => Ok(p.join("share/jupyter/kernels")),
            InstallTarget::SysPrefix => env("VIRTUAL_ENV")
                .or_else(|| env("CONDA_PREFIX"))
                .map(|p| p.join("share/jupyter/kernels"))
                .ok_or_else(|| {
                    InstallError::NoDir(
                        "--sys-prefix needs an active virtualenv or conda env ($VIRTUAL_ENV or $CONDA_PREFIX); use --user or --prefix P".into(),
                    )
                }),
            InstallTarget::User => {
                if let Some(d) = env("JUPYTER_DATA_DIR") {
                    return Ok(d.join("kernels"));
                }
                let data = if cfg!(windows) {
                    env("APPDATA").map(|d| d.join("jupyter"))
                } else if cfg!(target_os = "macos") {
                    env("HOME").map(|h| h.join("Library/Jupyter"))
                } else {
                    env("XDG_DATA_HOME")
                        .or_else(|| env("HOME").map(|h| h.join(".local/share")))
                        .map(|d| d.join("jupyter"))
                };
                data.map(|d| d.join("kernels")).ok_or_else(|| {
                    InstallError::NoDir("no home directory; use --prefix P".into())
                })
            }
        }
    }
}

/// Why a kernelspec could not be installed.
#[derive(Debug)]
#[non_exhaustive]
pub enum InstallError {
    /// The target directory cannot be determined.
    NoDir(String),
    /// Writing failed.
    Io(PathBuf, io::Error),
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::NoDir(m) => write!(f, "cannot install the kernelspec: {m}"),
            InstallError::Io(p, e) => write!(f, "cannot write {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for InstallError {}

/// A kernelspec to install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelSpec {
    /// The directory name and `--kernel_name` (`autoawait`).
    pub name: String,
    /// What notebooks show (`autoawait (Lua)`).
    pub display_name: String,
    /// The language of its cells (`lua`).
    pub language: String,
    /// The command line; `{connection_file}` is replaced by the front end.
    pub argv: Vec<String>,
}

impl KernelSpec {
    /// The spec for `exe kernel -f {connection_file}`, a kernel that says `info`:
    /// named after its implementation, shown as `implementation (Language)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use autoawait_kernel::{KernelInfo, KernelSpec};
    ///
    /// let info = KernelInfo { implementation: "autoawait".into(), language: "lua".into(), ..KernelInfo::default() };
    /// let spec = KernelSpec::for_exe("/usr/bin/autoawait".as_ref(), &info);
    /// assert_eq!(spec.argv, ["/usr/bin/autoawait", "kernel", "-f", "{connection_file}"]);
    /// assert_eq!(spec.display_name, "autoawait (Lua)");
    /// ```
    pub fn for_exe(exe: &Path, info: &crate::KernelInfo) -> Self {
        let mut language = info.language.chars();
        let shown: String = language
            .next()
            .map(|c| c.to_uppercase().chain(language).collect())
            .unwrap_or_default();
        KernelSpec {
            name: info.implementation.clone(),
            display_name: format!("{} ({shown})", info.implementation),
            language: info.language.clone(),
            argv: vec![
                exe.display().to_string(),
                "kernel".into(),
                "-f".into(),
                "{connection_file}".into(),
            ],
        }
    }

    /// The spec for the running executable ([`std::env::current_exe`]).
    ///
    /// # Errors
    ///
    /// [`InstallError::Io`] if the executable's path is unknown.
    pub fn for_current_exe(info: &crate::KernelInfo) -> Result<Self, InstallError> {
        let exe = std::env::current_exe()
            .map_err(|e| InstallError::Io(PathBuf::from("<current exe>"), e))?;
        Ok(Self::for_exe(&exe, info))
    }

    /// The `kernel.json` text.
    pub fn to_json(&self) -> String {
        let v = json!({
            "argv": self.argv,
            "display_name": self.display_name,
            "language": self.language,
            "interrupt_mode": "message",
            "kernel_protocol_version": crate::wire::PROTOCOL_VERSION,
            "env": {},
            "metadata": { "debugger": false },
        });
        serde_json::to_string_pretty(&v).expect("a JSON value serialises")
    }

    /// Writes `kernel.json`, `logo-32x32.png` and `logo-64x64.png` into
    /// `<target>/<name>/`, replacing an older install; returns that directory.
    ///
    /// # Errors
    ///
    /// [`InstallError`] if the directory is unknown or cannot be written.
    pub fn install(&self, target: &InstallTarget) -> Result<PathBuf, InstallError> {
        let dir = target.kernels_dir()?.join(&self.name);
        let io = |p: &Path| {
            let p = p.to_owned();
            move |e| InstallError::Io(p, e)
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).map_err(io(&p))
        };
        write("kernel.json", self.to_json().as_bytes())?;
        write("logo-32x32.png", &logo_png(32))?;
        write("logo-64x64.png", &logo_png(64))?;
        Ok(dir)
    }
}

/// A `size`×`size` RGBA logo: a blue disc with a white "await" ring.
pub(crate) fn logo_png(size: u32) -> Vec<u8> {
    let mut raw = Vec::with_capacity((size * (size * 4 + 1)) as usize);
    let c = (size as f32 - 1.0) / 2.0;
    let r = size as f32 / 2.0;
    for y in 0..size {
        raw.push(0); // filter: none
        for x in 0..size {
            let d = ((x as f32 - c).powi(2) + (y as f32 - c).powi(2)).sqrt() / r;
            let px: [u8; 4] = if d > 1.0 {
                [0, 0, 0, 0]
            } else if (0.55..0.72).contains(&d) && !(x as f32 > c && (y as f32) < c) {
                [255, 255, 255, 255]
            } else {
                [0, 0, 128, 255]
            };
            raw.extend_from_slice(&px);
        }
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&size.to_be_bytes());
    ihdr.extend_from_slice(&size.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &zlib_stored(&raw));
    chunk(&mut png, b"IEND", &[]);
    png
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// zlib with stored (uncompressed) deflate blocks: tiny logos need no compressor.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut blocks = data.chunks(65_535).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_png_reference_value() {
        // The CRC of an empty IEND chunk is fixed by the PNG spec.
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }

    #[test]
    fn logos_are_pngs_of_the_right_size() {
        for size in [32, 64] {
            let png = logo_png(size);
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
            assert_eq!(&png[12..16], b"IHDR");
            assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), size);
            assert!(png.ends_with(&[0xAE, 0x42, 0x60, 0x82]));
        }
    }

    #[test]
    fn install_writes_kernel_json_and_logos() {
        let dir = std::env::temp_dir().join(format!("autoawait-kernelspec-{}", std::process::id()));
        let info = crate::KernelInfo {
            implementation: "autoawait".into(),
            language: "lua".into(),
            ..crate::KernelInfo::default()
        };
        let spec = KernelSpec::for_exe("/bin/autoawait".as_ref(), &info);
        let at = spec.install(&InstallTarget::Prefix(dir.clone())).unwrap();
        assert_eq!(at, dir.join("share/jupyter/kernels/autoawait"));
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(at.join("kernel.json")).unwrap())
                .unwrap();
        assert_eq!(json["language"], "lua");
        assert_eq!(json["interrupt_mode"], "message");
        assert_eq!(json["kernel_protocol_version"], "5.5");
        assert_eq!(json["argv"][3], "{connection_file}");
        assert!(at.join("logo-32x32.png").is_file() && at.join("logo-64x64.png").is_file());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
