//! `vocelio-local`: run the whole backend on one local URL, mint dev tokens, benchmark.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vocelio_local::app;
use vocelio_local::stack::{self, LocalAws};
use vocelio_local::standins::{self, StandIns};
use vocelio_shared::Role;

#[derive(Parser)]
#[command(name = "vocelio-local", about = "The Vocelio backend on your machine")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what is missing, start the stand-ins, create the tables, serve every route.
    Up {
        /// Port of the API (every route, one URL).
        #[arg(long, env = "VOCELIO_PORT", default_value_t = 8000)]
        port: u16,
        /// Port of DynamoDB Local (free port when not given).
        #[arg(long, env = "VOCELIO_DYNAMODB_PORT")]
        dynamodb_port: Option<u16>,
        /// Port of the S3 stand-in (free port when not given).
        #[arg(long, env = "VOCELIO_S3_PORT")]
        s3_port: Option<u16>,
    },
    /// Install the stand-ins (Java 17, DynamoDB Local, moto, espeak-ng) and exit.
    Install,
    /// Measure API latency vs raw DynamoDB Local, and Lambda cold starts (release builds).
    Bench {
        /// Requests per series.
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        /// Where `cargo lambda build --release` put the binaries (default target/lambda).
        #[arg(long)]
        lambda_dir: Option<std::path::PathBuf>,
        /// Only the real-time series (SSE and WebSocket delivery).
        #[arg(long)]
        realtime_only: bool,
        /// Only the TTS series (cache hits, synthesis speed, streaming, provider calls, RSS).
        #[arg(long)]
        tts_only: bool,
        /// Only the telephony series (signed status callbacks, make → in-progress).
        #[arg(long)]
        telephony_only: bool,
        /// Only the contacts series (imports, search, DNC checks).
        #[arg(long)]
        contacts_only: bool,
        /// Only the accounts series (Argon2id, sign-in, refresh, token verification).
        #[arg(long)]
        accounts_only: bool,
        /// Row counts of the generated contact imports.
        #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
        contacts_rows: Vec<usize>,
    },
    /// Make a token signing key set for a deployment: writes the private set (for the
    /// Secrets Manager secret of JwtSigningKeysSecretArn) and prints the public JWKS (the
    /// JwtPublicKeys parameter). With --rotate FILE, adds a new active key to an existing set.
    Keygen {
        /// Where to write the private key set (owner-only permissions).
        #[arg(long, default_value = "jwt-signing-keys.json")]
        out: std::path::PathBuf,
        /// An existing key set to rotate: a new key signs, the old ones keep verifying.
        #[arg(long)]
        rotate: Option<std::path::PathBuf>,
    },
    /// Print a dev access token, signed with the local stack's key (`.local/jwt-signing-keys.json`).
    Token {
        #[arg(long, default_value = "demo")]
        tenant: String,
        #[arg(long, default_value = "admin-1")]
        user: String,
        #[arg(long, default_value = "admin")]
        role: Role,
        #[arg(long, default_value_t = 12)]
        hours: i64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Cmd::Bench { .. }) && std::env::var_os("RUST_LOG").is_none() {
        // Figures, not request logs.
        vocelio_shared::telemetry::init_with("warn");
    } else {
        vocelio_shared::telemetry::init_local();
    }
    let result = match cli.command {
        Cmd::Up {
            port,
            dynamodb_port,
            s3_port,
        } => up(port, dynamodb_port, s3_port).await,
        Cmd::Bench {
            requests,
            lambda_dir,
            realtime_only,
            tts_only,
            telephony_only,
            contacts_only,
            accounts_only,
            contacts_rows,
        } => {
            let only = if realtime_only {
                vocelio_local::bench::Only::Realtime
            } else if tts_only {
                vocelio_local::bench::Only::Tts
            } else if telephony_only {
                vocelio_local::bench::Only::Telephony
            } else if contacts_only {
                vocelio_local::bench::Only::Contacts
            } else if accounts_only {
                vocelio_local::bench::Only::Accounts
            } else {
                vocelio_local::bench::Only::Everything
            };
            vocelio_local::bench::run(requests, lambda_dir, only, &contacts_rows).await
        }
        Cmd::Keygen { out, rotate } => keygen(&out, rotate.as_deref()),
        Cmd::Install => standins::ensure_installed()
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Cmd::Token {
            tenant,
            user,
            role,
            hours,
        } => stack::local_keys_json()
            .and_then(|keys| stack::mint_token(&keys, &tenant, &user, role, hours))
            .map(|t| println!("{t}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vocelio-local: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn up(port: u16, dynamodb_port: Option<u16>, s3_port: Option<u16>) -> Result<(), String> {
    let started = std::time::Instant::now();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|e| {
            format!("cannot listen on 127.0.0.1:{port}: {e} (pick another with --port)")
        })?;
    let standins = tokio::task::spawn_blocking(move || StandIns::start(dynamodb_port, s3_port))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let aws = LocalAws::connect(&standins.dynamodb.url, &standins.s3.url).await;
    let template = standins::project_root().join("template.yaml");
    let tables = aws.provision(&template).await?;
    let base = format!("http://127.0.0.1:{port}");
    let config = stack::local_config(&base).map_err(|e| e.to_string())?;
    let secret = stack::local_keys_json()?;
    let core = config.table_name.clone();
    let state = stack::local_state(config, &aws);
    let realtime = stack::local_realtime(state.clone(), &aws)?;
    let (fakes, fake_tasks) = stack::start_speech_fakes().await?;
    let tts = stack::local_tts(&aws, &fakes, &|name: &str| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    })?;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (simulator, simulator_task) =
        stack::start_twilio_simulator(&base, std::time::Duration::from_secs(1)).await?;
    let telephony = stack::local_telephony(
        state.clone(),
        Some(tts.clone()),
        &simulator.base_url,
        &base,
        &env,
    )?;
    let contacts = stack::local_contacts(state.clone(), &aws, &env)?;
    let accounts = stack::local_accounts(&env, stack::local_signing_keys()?)?;
    let gateway = vocelio_local::gateway::LocalGateway::new(realtime.clone()).with_tts(
        tts::ws::TtsSocket::new(state.clone(), tts.clone(), &aws.sdk),
    );
    let token = stack::mint_token(&secret, "demo", "admin-1", Role::Admin, 12)?;
    let ws = base.replace("http://", "ws://");
    println!(
        "\nVocelio local stack is up in {:.1} s\n\
         \n  API (every route):   {base}\
         \n  WebSocket:           {ws}/ws?token=... and {ws}/ws/transfers?token=...\
         \n  SSE:                 {base}/api/calls/active/events?token=...\
         \n  TTS:                 {base}/tiers, /voices/{{provider}}, /synthesize, /stream/synthesize\
         \n  Telephony:           {base}/api/numbers/search|buy, /api/calls/make, /api/calls/{{call_sid}}/status, /admin/register-flow, /api/telephony/policy; Twilio webhooks at {base}/twilio/...\
         \n  Contacts:            {base}/v1/contact-lists, /v1/contacts, /v1/uploads/contacts, /v1/dnc-lists, /v1/dnc/scrub (errors in the contact guide's form)\
         \n  Twilio simulator:    {} (account {}; its calls at /__sim/calls)\
         \n  Azure Speech fake:   {} (key {})\
         \n  ElevenLabs fake:     {} (key {})\
         \n  DynamoDB Local:      {} (tables: {})\
         \n  S3 (moto):           {} (bucket: {})\
         \n\nDev token (tenant demo, user admin-1, role admin, 12 h):\n\n  {token}\n\
         \nTry:\n\n  export TOKEN={token}\
         \n  curl -s -X POST {base}/api/departments -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\\
         \n       -d '{{\"name\": \"Sales\", \"phone_number\": \"+1555-SALES-01\"}}'\
         \n  curl -s {base}/api/departments -H \"Authorization: Bearer $TOKEN\"\
         \n  curl -s -X POST {base}/synthesize -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\\
         \n       -d '{{\"text\": \"Hello world\", \"voice_id\": \"en-US-AriaNeural\", \"provider\": \"azure\"}}' -D - -o hello.mp3\
         \n  curl -s '{base}/api/numbers/search?country=US&area_code=415' -H \"Authorization: Bearer $TOKEN\"   # the tenant's own Twilio subaccount\
         \n  curl -s -X POST {base}/api/numbers/buy -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -d '{{\"phone_number\": \"+14155550111\"}}'\
         \n  curl -s -X POST {base}/api/calls/make -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\\
         \n       -d '{{\"to\": \"+14155550123\", \"message\": \"Hello from Vocelio\", \"voice_settings\": {{\"provider\": \"azure\", \"voice_id\": \"en-US-AriaNeural\"}}}}'\
         \n  curl -s {base}/api/calls/CA.../status -H \"Authorization: Bearer $TOKEN\"   # the call_sid above: ringing, in-progress, completed\
         \n  curl -s -X POST {twilio}/__sim/inbound -H 'Content-Type: application/json' -d '{{\"from\": \"+14155550177\", \"to\": \"<a number you registered>\"}}'\
         \n\nContacts: a list, a CSV through the presigned upload, the job's progress, a search:\n\
         \n  curl -s -X POST {base}/v1/contact-lists -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -d '{{\"name\": \"Leads\"}}'\
         \n  curl -s -X POST {base}/v1/uploads/contacts -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\\
         \n       -d '{{\"fileName\": \"leads.csv\", \"contentType\": \"text/csv\", \"listId\": \"lst_...\"}}'   # answers jobId and uploadUrl\
         \n  curl -s -X PUT \"<uploadUrl>\" -H 'Content-Type: text/csv' --data-binary @local/tests/fixtures/contacts/spreadsheet_bom_crlf.csv\
         \n  curl -s -X POST {base}/v1/uploads/contacts/imp_.../start -H \"Authorization: Bearer $TOKEN\"\
         \n  curl -s {base}/v1/uploads/contacts/imp_... -H \"Authorization: Bearer $TOKEN\"\
         \n  curl -s '{base}/v1/contacts?search=415%20555-2671' -H \"Authorization: Bearer $TOKEN\"\
         \n  curl -s {base}/v1/contact-lists/lst_.../export -H \"Authorization: Bearer $TOKEN\"\
         \n\nOther tokens: cargo run -p vocelio-local -- token --tenant demo --user ana --role agent\
         \nCtrl-C stops everything this command started.\n",
        started.elapsed().as_secs_f64(),
        simulator.base_url,
        twilio_sim::ACCOUNT_SID,
        fakes.azure_url,
        vocelio_local::fakes::AZURE_FAKE_KEY,
        fakes.elevenlabs_url,
        vocelio_local::fakes::ELEVENLABS_FAKE_KEY,
        standins.dynamodb.url,
        tables
            .iter()
            .map(|t| t.logical_id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        standins.s3.url,
        stack::LOCAL_BUCKET,
        twilio = simulator.base_url,
    );
    let sweeper = app::spawn_sweeper(state.clone(), std::time::Duration::from_secs(1));
    let reconciler = app::spawn_reconciler(telephony.clone(), std::time::Duration::from_secs(1));
    let follower = app::spawn_stream_follower(
        realtime,
        Some(telephony.clone()),
        &standins.dynamodb.url,
        &core,
    );
    let imports =
        app::spawn_import_notifications(contacts.clone(), std::time::Duration::from_millis(250));
    axum::serve(
        listener,
        app::app(state, &gateway, tts, telephony, contacts, accounts)
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| e.to_string())?;
    sweeper.abort();
    reconciler.abort();
    follower.abort();
    imports.abort();
    fake_tasks.iter().for_each(|task| task.abort());
    simulator_task.abort();
    eprintln!("[local] stopping stand-ins");
    drop(standins);
    Ok(())
}

fn keygen(out: &std::path::Path, rotate: Option<&std::path::Path>) -> Result<(), String> {
    use vocelio_shared::jwt::SigningKeys;
    let kid = format!("key-{}", time::OffsetDateTime::now_utc().unix_timestamp());
    let keys = match rotate {
        Some(path) => {
            let raw =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut keys = SigningKeys::from_json(&raw).map_err(|e| e.to_string())?;
            keys.rotate(&kid).map_err(|e| e.to_string())?;
            keys
        }
        None => SigningKeys::generate(&kid).map_err(|e| e.to_string())?,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(out)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    std::io::Write::write_all(&mut file, keys.to_json().as_bytes()).map_err(|e| e.to_string())?;
    eprintln!(
        "private key set written to {} (active key {}); store it in Secrets Manager and delete the file",
        out.display(),
        keys.active_kid()
    );
    println!("{}", keys.jwks());
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
