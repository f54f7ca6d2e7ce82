//! Command-line front end: `wix-emulator [flags]`, also usable as a subcommand.

use std::time::Duration;

use crate::{
    AuthMode, Emulator, EmulatorConfig, EntryNames, Library, PagingStyle, PrivateInArchive, RandomFaults, RateLimit,
    UnknownIds, ZipFormat,
};

const USAGE: &str = "\
usage: wix-emulator [flags]
  --port N               port on 127.0.0.1 (default 8090, 0 = any free port)
  --files N              size of the seeded media library (default 250)
  --seed N               seed of the library and of random faults (default 7)
  --sizes MIN-MAX        file sizes in bytes of the seeded library (default 200-8192)
  --big-files S,S,…      instead of a seeded library, one ready video per size in bytes
  --latency-ms N         latency added to every API call (default 0)
  --rate-limit N         API calls allowed per minute (default: no limit)
  --bucket-burst B       count --rate-limit with a token bucket of B (default: a sliding window)
  --retry-after          send Retry-After with rate-limit 429s
  --fail-rate F          probability of a 5xx on each API call (default 0)
  --api-key K            accepted API key (default emulator-api-key)
  --site-id S            accepted wix-site-id (default emulator-site-id)
  --auth M               documented|no-permission|all-403 (default documented)
  --unknown-ids M        validation|validation-unnamed|reject|ignore|nothing|nothing-on-link
                         (default validation)
  --private M            include|reject|omit private files in archives (default include)
  --omit-types T,T       media types archives leave out (default none)
  --entry-names M        id|name|path (default id)
  --zip M                stored|crc-first|deflated (default stored)
  --chunked              downloads without Content-Length
  --paging M             documented|cursors|legacy (default documented)
  --allow-other-filter   accept mediaTypes [\"OTHER\"] in searches
  --import-delay-ms N    time until an imported file leaves PENDING (default 200)";

/// Runs the emulator from command-line flags (without the program name) until Ctrl-C.
pub async fn run_cli(args: Vec<String>) -> Result<(), String> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let options = parse(&args)?;
    let emulator = Emulator::start(options.config)
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", options.port))?;
    if let Some(faults) = options.random {
        emulator.set_random_faults(Some(faults));
    }
    println!(
        "wix-emulator listening on {} (api key {}, site id {})",
        emulator.base_url(),
        options.api_key,
        options.site_id
    );
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?;
    emulator.shutdown();
    Ok(())
}

struct Options {
    config: EmulatorConfig,
    random: Option<RandomFaults>,
    port: u16,
    api_key: String,
    site_id: String,
}

/// `value` as one of `choices` (flag value, mode).
fn choice<T: Copy>(flag: &str, value: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            format!("{flag} must be one of {}, not {value:?}", names.join("|"))
        })
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut config = EmulatorConfig {
        port: 8090,
        ..EmulatorConfig::default()
    };
    let mut files = 250usize;
    let mut seed = 7u64;
    let mut sizes = Library::DEFAULT_SIZES;
    let mut big_files: Option<Vec<u64>> = None;
    let mut rate_limit = None;
    let mut burst = None;
    let mut retry_after = false;
    let mut fail_rate = 0.0f64;
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--port" => config.port = number(flag, value()?)?,
            "--files" => files = number(flag, value()?)?,
            "--seed" => seed = number(flag, value()?)?,
            "--sizes" => {
                let v = value()?;
                let (min, max) = v
                    .split_once('-')
                    .ok_or_else(|| format!("--sizes needs MIN-MAX, not {v:?}"))?;
                let (min, max): (u64, u64) = (number(flag, min)?, number(flag, max)?);
                if min >= max {
                    return Err(format!("--sizes needs MIN below MAX, not {v:?}"));
                }
                sizes = min..max;
            }
            "--big-files" => {
                big_files = Some(value()?.split(',').map(|s| number(flag, s)).collect::<Result<_, _>>()?);
            }
            "--latency-ms" => config.latency = Duration::from_millis(number(flag, value()?)?),
            "--rate-limit" => rate_limit = Some(number::<u32>(flag, value()?)?),
            "--bucket-burst" => burst = Some(number::<u32>(flag, value()?)?),
            "--retry-after" => retry_after = true,
            "--fail-rate" => {
                fail_rate = number(flag, value()?)?;
                if !(0.0..=1.0).contains(&fail_rate) {
                    return Err(format!("--fail-rate must be between 0 and 1, not {fail_rate}"));
                }
            }
            "--api-key" => config.api_key = value()?.clone(),
            "--site-id" => config.site_id = value()?.clone(),
            "--auth" => {
                config.auth = choice(
                    flag,
                    value()?,
                    &[
                        ("documented", AuthMode::Documented),
                        ("no-permission", AuthMode::MissingPermission),
                        ("all-403", AuthMode::AllForbidden),
                    ],
                )?
            }
            "--unknown-ids" => {
                config.unknown_ids = choice(
                    flag,
                    value()?,
                    &[
                        ("validation", UnknownIds::Validation),
                        ("validation-unnamed", UnknownIds::ValidationUnnamed),
                        ("reject", UnknownIds::Reject),
                        ("ignore", UnknownIds::Ignore),
                        ("nothing", UnknownIds::NothingToDownload),
                        ("nothing-on-link", UnknownIds::NothingToDownloadOnLink),
                    ],
                )?
            }
            "--private" => {
                config.private_in_archive = choice(
                    flag,
                    value()?,
                    &[
                        ("include", PrivateInArchive::Include),
                        ("reject", PrivateInArchive::Reject),
                        ("omit", PrivateInArchive::Omit),
                    ],
                )?
            }
            "--omit-types" => {
                config.omit_media_types = value()?
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            "--entry-names" => {
                config.entry_names = choice(
                    flag,
                    value()?,
                    &[
                        ("id", EntryNames::FileId),
                        ("name", EntryNames::DisplayName),
                        ("path", EntryNames::FolderPath),
                    ],
                )?
            }
            "--zip" => {
                config.zip_format = choice(
                    flag,
                    value()?,
                    &[
                        ("stored", ZipFormat::Stored),
                        ("crc-first", ZipFormat::StoredCrcFirst),
                        ("deflated", ZipFormat::Deflated),
                    ],
                )?
            }
            "--chunked" => config.content_length = false,
            "--paging" => {
                config.paging = choice(
                    flag,
                    value()?,
                    &[
                        ("documented", PagingStyle::Documented),
                        ("cursors", PagingStyle::CursorsOnly),
                        ("legacy", PagingStyle::Legacy),
                    ],
                )?
            }
            "--allow-other-filter" => config.refuse_other_media_type = false,
            "--import-delay-ms" => config.import_delay = Duration::from_millis(number(flag, value()?)?),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    config.library = match big_files {
        Some(sizes) => Library::big_files(&sizes),
        None => Library::seeded_with(files, seed, sizes),
    };
    if burst.is_some() && rate_limit.is_none() {
        return Err("--bucket-burst needs --rate-limit".into());
    }
    config.rate_limit = rate_limit.map(|per_minute| {
        let limit = match burst {
            Some(burst) => RateLimit::token_bucket(per_minute, burst),
            None => RateLimit::window(per_minute),
        };
        RateLimit { retry_after, ..limit }
    });
    let random = (fail_rate > 0.0).then_some(RandomFaults {
        seed,
        p_429: 0.0,
        p_5xx: fail_rate,
        p_drop: 0.0,
        p_hang: 0.0,
        hang: Duration::ZERO,
        p_malformed: 0.0,
    });
    Ok(Options {
        port: config.port,
        api_key: config.api_key.clone(),
        site_id: config.site_id.clone(),
        config,
        random,
    })
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} needs a number, not {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LimiterKind;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_every_flag() {
        let o = parse(&args(&[
            "--port",
            "0",
            "--files",
            "40",
            "--seed",
            "3",
            "--sizes",
            "10-20",
            "--latency-ms",
            "15",
            "--rate-limit",
            "200",
            "--bucket-burst",
            "20",
            "--retry-after",
            "--fail-rate",
            "0.1",
            "--api-key",
            "k",
            "--site-id",
            "s",
            "--auth",
            "no-permission",
            "--unknown-ids",
            "nothing-on-link",
            "--private",
            "omit",
            "--omit-types",
            "MODEL3D,OTHER",
            "--entry-names",
            "path",
            "--zip",
            "deflated",
            "--chunked",
            "--paging",
            "legacy",
            "--allow-other-filter",
            "--import-delay-ms",
            "5",
        ]))
        .unwrap();
        let c = &o.config;
        assert_eq!(c.port, 0);
        assert_eq!(c.library.files.len(), 40);
        assert!(c.library.files.iter().all(|f| (10..20).contains(&f.size_in_bytes)));
        assert_eq!(c.latency, Duration::from_millis(15));
        let limit = c.rate_limit.unwrap();
        assert_eq!(
            (limit.per_minute, limit.retry_after, limit.kind),
            (200, true, LimiterKind::TokenBucket { burst: 20 })
        );
        assert_eq!(o.random.unwrap().p_5xx, 0.1);
        assert_eq!((o.api_key.as_str(), o.site_id.as_str()), ("k", "s"));
        assert_eq!(c.auth, AuthMode::MissingPermission);
        assert_eq!(c.unknown_ids, UnknownIds::NothingToDownloadOnLink);
        assert_eq!(c.private_in_archive, PrivateInArchive::Omit);
        assert_eq!(c.omit_media_types, ["MODEL3D", "OTHER"]);
        assert_eq!(c.entry_names, EntryNames::FolderPath);
        assert_eq!(c.zip_format, ZipFormat::Deflated);
        assert!(!c.content_length && !c.refuse_other_media_type);
        assert_eq!(c.paging, PagingStyle::Legacy);
        assert_eq!(c.import_delay, Duration::from_millis(5));

        let o = parse(&args(&["--rate-limit", "60", "--big-files", "10,20"])).unwrap();
        assert_eq!(o.config.rate_limit.unwrap().kind, LimiterKind::Window);
        let sizes: Vec<u64> = o.config.library.files.iter().map(|f| f.size_in_bytes).collect();
        assert_eq!(sizes, [10, 20]);
    }

    #[test]
    fn defaults_and_errors() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.config.port, 8090);
        assert!(o.config.rate_limit.is_none() && o.random.is_none());
        assert_eq!(o.config.unknown_ids, UnknownIds::Validation);
        for bad in [
            &["--port"][..],
            &["--port", "x"],
            &["--bogus"],
            &["--unknown-ids", "maybe"],
            &["--fail-rate", "2"],
            &["--sizes", "9-3"],
            &["--bucket-burst", "3"],
            &["--zip", "rar"],
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
