//! `autoawait new plugin DIR --name NAME [--static]`: a runner crate that passes
//! `autoawait check` as generated, like `cargo new`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};

const LIB: &str = include_str!("../templates/plugin/lib.rs.tmpl");
const CONFORMANCE: &str = include_str!("../templates/plugin/conformance.rs.tmpl");
const README: &str = include_str!("../templates/plugin/README.md.tmpl");

/// Where this checkout's crates are, if the binary runs from one: the scaffold
/// depends on them by path; elsewhere on their published version.
fn checkout() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .to_path_buf();
    root.join("core/Cargo.toml").is_file().then_some(root)
}

fn dependency(name: &str, dir: &str) -> String {
    let version = env!("CARGO_PKG_VERSION");
    match checkout() {
        Some(root) => format!(
            "{name} = {{ path = \"{}\", version = \"{version}\" }}",
            root.join(dir).display()
        ),
        None => format!("{name} = \"{version}\""),
    }
}

fn camel(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// Writes the crate into `dir` (which must not exist, or be empty) and returns what
/// to tell the user.
///
/// # Errors
///
/// If `name` is not a runner name (lowercase letters, digits, dashes) or the files
/// cannot be written.
pub fn new_plugin(dir: &Path, name: &str, statically: bool) -> anyhow::Result<String> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(anyhow!(
            "`{name}` is not a runner name: use lowercase letters, digits and dashes, \
             starting with a letter (it is what users type after %autoawait)"
        ));
    }
    if dir.exists() && dir.read_dir().map_or(true, |mut d| d.next().is_some()) {
        return Err(anyhow!(
            "{} exists and is not empty: pick a new directory",
            dir.display()
        ));
    }
    let package = format!("autoawait-{name}");
    let krate = package.replace('-', "_");
    let (crate_type, export, extra, kind, usage, checks) = if statically {
        (
            "\"rlib\"",
            "inventory::submit! { autoawait_core::RunnerFactory::new(INFO, make) }".to_owned(),
            "inventory = \"0.3\"\n".to_owned(),
            " linked into its host (`use KRATE as _;`)".replace("KRATE", &krate),
            "autoawait check NAME    # once a host links it".replace("NAME", name),
            "",
        )
    } else {
        (
            "\"cdylib\", \"rlib\"",
            format!(
                "/// The plugin: its runner, for `%load_ext {name}`.\n\
                 pub fn plugin() -> autoawait_plugin::PluginBuilder {{\n    \
                 autoawait_plugin::PluginBuilder::new(\"{name}\").runner(INFO, make)\n}}\n\n\
                 autoawait_plugin::export_plugin!(plugin);"
            ),
            format!("{}\n", dependency("autoawait-plugin", "plugin")),
            " loaded at run time (`%load_ext PATH`)".to_owned(),
            format!(
                "cargo build && autoawait check target/debug/{}{krate}{}",
                std::env::consts::DLL_PREFIX,
                std::env::consts::DLL_SUFFIX
            ),
            ", through the host and inside the plugin",
        )
    };
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{Camel}}", &camel(name))
            .replace("{{crate}}", &krate)
            .replace("{{module}}", &name.replace('-', "_"))
            .replace("{{export}}", &export)
            .replace("{{kind}}", &kind)
            .replace("{{usage}}", &usage)
            .replace("{{checks}}", checks)
    };
    let manifest = format!(
        "[package]\nname = \"{package}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
         description = \"The {name} runner for autoawait\"\n\n\
         # A workspace of its own, wherever it is created.\n[workspace]\n\n\
         [lib]\ncrate-type = [{crate_type}]\n\n[dependencies]\n{}\n{extra}\
         futures = {{ version = \"0.3\", default-features = false, features = [\"std\", \"executor\"] }}\n\n\
         [dev-dependencies]\n{}\n",
        dependency("autoawait-core", "core"),
        dependency("autoawait-conformance", "conformance"),
    );
    let files = [
        ("Cargo.toml", manifest),
        ("src/lib.rs", fill(LIB)),
        ("tests/conformance.rs", fill(CONFORMANCE)),
        ("README.md", fill(README)),
        (".gitignore", "/target\n".to_owned()),
    ];
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(format!(
        "created the {} runner `{name}` in {}: cd there, then\n  cargo test\n  {usage}",
        if statically { "static" } else { "plugin" },
        dir.display()
    ))
}
