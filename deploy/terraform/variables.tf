variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "regions" {
  description = "Regions to run the service in; the load balancer sends each client to the nearest healthy one."
  type        = list(string)
  default     = ["europe-west1", "us-east1", "us-west1", "asia-northeast1"]

  validation {
    # Failing over needs somewhere to fail over to; Cloud Run service health needs
    # services in at least two regions; a canary needs regions to protect.
    condition     = length(var.regions) >= 2 && length(var.regions) == length(distinct(var.regions))
    error_message = "Give at least two regions, each once: with one, there is nowhere to fail over to and no region for a release to reach after its canary."
  }
}

variable "domain" {
  description = "Domain the load balancer serves, e.g. hello.example.com; its DNS A record must point at the load_balancer_ip output."
  type        = string
}

variable "load_balancer" {
  description = "Create the load balancer. Its serverless NEGs can only point at Cloud Run services that exist, and Cloud Deploy creates them with the first release: on a new project, apply with false, release once, then apply with true (RELEASES.md, 'The first deployment')."
  type        = bool
  default     = true
}

variable "failover" {
  description = "Rely on Cloud Run service health (the readiness probe in deploy/service.yaml) to move traffic away from a region whose instances fail it. It needs an instance to probe in every region, so true refuses min_instances = 0 at plan time."
  type        = bool
  default     = true
}

variable "min_instances" {
  description = "Instances kept running in each region. Service health (var.failover) needs at least 1 in every region, and minimum instances are billed while idle: with the defaults, 1 instance x 4 regions of 1 vCPU and 256 MiB, around the clock. 0 lets each region scale to zero, without automatic failover."
  type        = number
  default     = 1

  validation {
    condition     = var.min_instances >= 0 && floor(var.min_instances) == var.min_instances
    error_message = "min_instances is a whole number, 0 or more."
  }
}

variable "max_instances" {
  description = "Most instances in each region."
  type        = number
  default     = 10

  validation {
    condition     = var.max_instances >= 1 && floor(var.max_instances) == var.max_instances
    error_message = "max_instances is a whole number, 1 or more."
  }
}

variable "lb_retries" {
  description = "How many times the load balancer retries a GET, HEAD or OPTIONS request that could not connect, was refused, or got a 502, 503 or 504. Each retry is a request Cloud Run bills. Other methods have no retry policy. 0 configures none at all (see FAILOVER.md)."
  type        = number
  default     = 1

  validation {
    condition     = var.lb_retries >= 0 && floor(var.lb_retries) == var.lb_retries
    error_message = "lb_retries is a whole number, 0 or more."
  }
}

variable "lb_per_try_timeout_seconds" {
  description = "Seconds the load balancer waits for each try of a GET, HEAD or OPTIONS request before it gives up on that try: what such a request can cost when a region hangs. Raise it if a GET can legitimately take longer. Unset, it would be the serverless backend timeout, fixed at 60 minutes."
  type        = number
  default     = 5

  validation {
    condition     = var.lb_per_try_timeout_seconds >= 1 && floor(var.lb_per_try_timeout_seconds) == var.lb_per_try_timeout_seconds
    error_message = "lb_per_try_timeout_seconds is a whole number of seconds, 1 or more."
  }
}

# Releases (release.tf). Each default is explained in one line; RELEASES.md has the
# whole policy and the measurements behind it.

variable "delivery_region" {
  description = "Where Cloud Deploy's pipeline, targets and automations live (not where the service runs). Changing it recreates them and loses the release history."
  type        = string
  default     = "europe-west1"
}

variable "canary_region" {
  description = "The region every release reaches first; the others get it only after it passed there. Pick one whose share of traffic times the first canary percentage is under your error budget: a bad release fails at most about that share of all requests until it is rolled back."
  type        = string
  default     = "europe-west1"
}

variable "canary_percentages" {
  description = "The new revision's share of each region's traffic, step by step, before 100 %. The first step is small (2 %) because a bad release fails that share of the canary region's requests until the analysis catches it: with four regions of equal traffic, 0.5 % of all requests (make faults measures it with three)."
  type        = list(number)
  default     = [2, 25]

  validation {
    condition = length(var.canary_percentages) >= 1 && alltrue([
      for i, p in var.canary_percentages : p >= 1 && p <= 99 && floor(p) == p && (i == 0 || p > try(var.canary_percentages[i - 1], 0))
    ])
    error_message = "canary_percentages are whole numbers from 1 to 99 in ascending order, at least one (Cloud Run canaries take no 0 or 100: 100 % is the stable step that follows)."
  }
}

variable "analysis_minutes" {
  description = "How long the analysis watches each canary step for an open alert before the rollout advances. 10 minutes: Cloud Run's request metrics arrive up to 3 minutes late and each alert looks at a whole window, so less would let a step pass before its own errors are visible."
  type        = number
  default     = 10

  validation {
    condition     = var.analysis_minutes >= 5 && var.analysis_minutes <= 2880 && floor(var.analysis_minutes) == var.analysis_minutes
    error_message = "analysis_minutes is a whole number from 5 (metrics arrive up to 3 minutes late, plus one alert window and a read) to 2880 (Cloud Deploy's 48 hours)."
  }
}

variable "alert_error_ratio" {
  description = "An alert opens when a revision answers more than this share of its requests with 5xx over alert_window_seconds. 0.05: the service answers no 5xx of its own when it works, so 5 % is a defect, not noise."
  type        = number
  default     = 0.05

  validation {
    condition     = var.alert_error_ratio > 0 && var.alert_error_ratio < 1
    error_message = "alert_error_ratio is a share between 0 and 1, e.g. 0.05 for 5 %."
  }
}

variable "alert_latency_ms" {
  description = "An alert opens when a revision's 99th percentile latency over alert_window_seconds exceeds this many milliseconds. 500: the service answers in about a millisecond, and a cold start stays well under it."
  type        = number
  default     = 500

  validation {
    condition     = var.alert_latency_ms >= 1 && floor(var.alert_latency_ms) == var.alert_latency_ms
    error_message = "alert_latency_ms is a whole number of milliseconds, 1 or more."
  }
}

variable "alert_window_seconds" {
  description = "The window each alert looks at. 60: Cloud Run's request metrics are sampled every 60 seconds, and Cloud Monitoring aligns on no less."
  type        = number
  default     = 60

  validation {
    condition     = var.alert_window_seconds >= 60 && var.alert_window_seconds % 60 == 0
    error_message = "alert_window_seconds is a whole number of minutes in seconds: 60, 120, ..."
  }
}

variable "bake_minutes" {
  description = "How long a release serves all of the canary region's traffic before it is promoted to the other regions. 30: long enough for the traffic of a whole half hour, slow requests and rarer paths included, to reach it, while the other regions still run the old version."
  type        = number
  default     = 30

  validation {
    condition     = var.bake_minutes >= 0 && var.bake_minutes <= 20160 && floor(var.bake_minutes) == var.bake_minutes
    error_message = "bake_minutes is a whole number from 0 to 20160 (Cloud Deploy's 14 days)."
  }
}

variable "synthetic_requests_per_second" {
  description = "Requests a second the release analysis's synthetic traffic sends to the new revision in each region of a canary step, through the load balancer's canary route (RELEASES.md, 'Quiet services'). 1: each one-minute alert window sees 60 of them, so that a revision failing more than 5 % of its requests opens an alert even when no user sends any. 0 turns it off, for a service busy enough that every step sees many requests of its users (it then costs nothing but its Cloud Build minutes); a quiet service without it can promote a broken release everywhere."
  type        = number
  default     = 1

  validation {
    condition     = var.synthetic_requests_per_second >= 0 && var.synthetic_requests_per_second <= 100
    error_message = "synthetic_requests_per_second is from 0 (none) to 100 a second to each region."
  }
}

variable "probe_image" {
  description = "The probe's image (cmd/probe), by digest, that the synthetic traffic runs: in this project's registry (output ko_docker_repo, the only one the analysis account may pull from): the last line of make publish-probe with KO_DOCKER_REPO set to it. Needed when synthetic_requests_per_second > 0 and load_balancer is true."
  type        = string
  default     = ""
}

variable "ci_service_account" {
  description = "The e-mail of the service account CI publishes with (docs/deploying.md, 'Publish from GitHub Actions'): it is given what creating a release needs. Empty: nobody is."
  type        = string
  default     = ""
}

# The edge (edge.tf, registry.tf). docs/security.md says what each protects against.

variable "tls_profile" {
  description = "The HTTPS proxy's SSL policy profile. MODERN (default): TLS 1.2 clients with ECDHE key exchange; no RSA key exchange, no 3DES. RESTRICTED: also only AES-GCM and ChaCha20, which drops TLS 1.2 clients without them; needed for a TLS 1.3 minimum."
  type        = string
  default     = "MODERN"

  validation {
    condition     = contains(["MODERN", "RESTRICTED"], var.tls_profile)
    error_message = "tls_profile is MODERN or RESTRICTED; COMPATIBLE (Google's default) allows TLS 1.0 ciphers and key exchange without forward secrecy."
  }
}

variable "tls_min_version" {
  description = "The oldest TLS the load balancer speaks. TLS_1_2 (default) excludes only clients that cannot speak TLS 1.2 (browsers before 2014, Android before 4.4). TLS_1_3 also excludes TLS 1.2 clients, and needs tls_profile = RESTRICTED."
  type        = string
  default     = "TLS_1_2"

  validation {
    condition     = contains(["TLS_1_2", "TLS_1_3"], var.tls_min_version)
    error_message = "tls_min_version is TLS_1_2 or TLS_1_3: TLS 1.0 and 1.1 are deprecated (RFC 8996)."
  }
}

variable "cloud_armor" {
  description = "Put a Cloud Armor policy with a per-client rate limit in front of the backend service. Costs, at Cloud Armor Standard's list prices (check cloud.google.com/armor/pricing): about 7 USD a month (5 for the policy, 1 for each of its 2 rules) plus 0.75 USD per million requests. false removes it."
  type        = bool
  default     = true
}

variable "rate_limit_requests" {
  description = "Requests one client IP may send in rate_limit_interval_seconds before the rest are answered 429. 600 a minute (10 a second) is far above what a person or a well-behaved client sends to this API; raise it for clients behind one NAT."
  type        = number
  default     = 600

  validation {
    condition     = var.rate_limit_requests >= 1 && var.rate_limit_requests <= 1000000 && floor(var.rate_limit_requests) == var.rate_limit_requests
    error_message = "rate_limit_requests is a whole number from 1 to 1,000,000 (Cloud Armor's range for a rate limit)."
  }
}

variable "rate_limit_interval_seconds" {
  description = "The window of rate_limit_requests, in seconds."
  type        = number
  default     = 60

  validation {
    condition     = contains([10, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800, 2700, 3600], var.rate_limit_interval_seconds)
    error_message = "rate_limit_interval_seconds is one of Cloud Armor's intervals: 10, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800, 2700 or 3600."
  }
}

variable "rate_limit_ban_requests" {
  description = "A client IP that sends more than this in rate_limit_ban_interval_seconds is banned (everything answered 429) for rate_limit_ban_seconds. 3000 in 5 minutes: twice the rate limit, kept up for five minutes."
  type        = number
  default     = 3000

  validation {
    condition     = var.rate_limit_ban_requests >= 1 && var.rate_limit_ban_requests <= 10000 && floor(var.rate_limit_ban_requests) == var.rate_limit_ban_requests
    error_message = "rate_limit_ban_requests is a whole number from 1 to 10,000 (Cloud Armor's range for a ban threshold)."
  }
}

variable "rate_limit_ban_interval_seconds" {
  description = "The window of rate_limit_ban_requests, in seconds."
  type        = number
  default     = 300

  validation {
    condition     = contains([10, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800, 2700, 3600], var.rate_limit_ban_interval_seconds)
    error_message = "rate_limit_ban_interval_seconds is one of Cloud Armor's intervals: 10, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800, 2700 or 3600."
  }
}

variable "rate_limit_ban_seconds" {
  description = "How long a banned client IP is answered 429 for everything. 600: ten minutes, long enough to make a flood pointless, short enough for a mistaken client to recover."
  type        = number
  default     = 600

  validation {
    condition     = var.rate_limit_ban_seconds >= 1 && floor(var.rate_limit_ban_seconds) == var.rate_limit_ban_seconds
    error_message = "rate_limit_ban_seconds is a whole number of seconds, 1 or more."
  }
}

variable "lb_log_sample_rate" {
  description = "The share of requests the load balancer logs (0 to 1). 1: every request, so that an incident can be traced afterwards; each is about a kilobyte in Cloud Logging, whose first 50 GiB a month are free, then 0.50 USD per GiB. 0 logs nothing."
  type        = number
  default     = 1

  validation {
    condition     = var.lb_log_sample_rate >= 0 && var.lb_log_sample_rate <= 1
    error_message = "lb_log_sample_rate is a share from 0 to 1."
  }
}

variable "registry_region" {
  description = "Where the Artifact Registry repository is: KO_DOCKER_REPO is REGISTRY_REGION-docker.pkg.dev/PROJECT/REPOSITORY."
  type        = string
  default     = "europe-west1"
}

variable "registry_repository" {
  description = "The Artifact Registry repository's name."
  type        = string
  default     = "containers"
}

variable "registry_scanning" {
  description = "Scan every image pushed to the repository for known vulnerabilities (Artifact Analysis; turns on containerscanning.googleapis.com). Costs 0.26 USD per image digest scanned, once per digest."
  type        = bool
  default     = true
}

# Objectives, alerts, uptime checks and the dashboard (monitoring.tf).
# docs/operations.md, "What pages you, and why", says what each alert asks of you.

variable "notification_emails" {
  description = "Who the burn-rate and uptime alerts e-mail. Empty (the default): the alerts open incidents in Cloud Monitoring and tell nobody, and every plan warns so."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.notification_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "notification_emails are e-mail addresses such as oncall@example.com, one a string."
  }
}

variable "slo_availability_goal" {
  description = "The share of requests, over slo_period_days, the load balancer must answer with anything but 5xx (4xx are not counted). 0.999: about 40 minutes of complete outage in 28 days."
  type        = number
  default     = 0.999

  validation {
    condition     = var.slo_availability_goal >= 0.9 && var.slo_availability_goal <= 0.9999
    error_message = "slo_availability_goal is a share from 0.9 to 0.9999 (Cloud Monitoring accepts no goal above 0.9999), e.g. 0.999 for 99.9 %."
  }
}

variable "slo_latency_goal" {
  description = "The share of requests, over slo_period_days, a region must answer within slo_latency_threshold_ms. 0.99: ten times the availability budget, so that a region frozen for a few minutes, whose requests the load balancer retries elsewhere a second later, spends budget without paging anyone (make faults, FAILOVER.md); a release that made every answer slow then pages after about 10 minutes of it rather than one (RELEASES.md, 'What users would be told')."
  type        = number
  default     = 0.99

  validation {
    condition     = var.slo_latency_goal >= 0.5 && var.slo_latency_goal <= 0.9999
    error_message = "slo_latency_goal is a share from 0.5 to 0.9999 (Cloud Monitoring accepts no goal above 0.9999), e.g. 0.99 for 99 %."
  }
}

variable "slo_latency_threshold_ms" {
  description = "A request answered slower than this, from the load balancer's sending it to a region to the last byte back, counts against the latency objective. 500: the release analysis's alert_latency_ms default. It could not be measured against Google's load balancer from the machine this was written on: after deploying, measure with make probe and tune it."
  type        = number
  default     = 500

  validation {
    condition     = var.slo_latency_threshold_ms >= 1 && var.slo_latency_threshold_ms <= 60000 && floor(var.slo_latency_threshold_ms) == var.slo_latency_threshold_ms
    error_message = "slo_latency_threshold_ms is a whole number of milliseconds from 1 to 60000."
  }
}

variable "slo_period_days" {
  description = "The rolling period the objectives are measured over, and whose error budget the alerts watch. 28: four whole weeks, so every weekday counts equally."
  type        = number
  default     = 28

  validation {
    condition     = var.slo_period_days >= 1 && var.slo_period_days <= 30 && floor(var.slo_period_days) == var.slo_period_days
    error_message = "slo_period_days is a whole number of days from 1 to 30 (Cloud Monitoring's range for a rolling period)."
  }
}

variable "burn_rate_alerts" {
  description = "The burn-rate alerts of every objective, one policy per row: severity page (CRITICAL) or ticket (WARNING), opened when the error budget burns faster than burn_rate times the affordable rate over both the long and the short window. The defaults are the SRE workbook's (chapter 5, table 5-8): a page at 14.4x over 1 h (2 % of a 30-day budget spent), a page at 6x over 6 h (5 %), a ticket at 1x over 3 days (10 %), each short window 1/12 of its long one."
  type = list(object({
    severity             = string
    long_window_minutes  = number
    short_window_minutes = number
    burn_rate            = number
  }))
  default = [
    { severity = "page", long_window_minutes = 60, short_window_minutes = 5, burn_rate = 14.4 },
    { severity = "page", long_window_minutes = 360, short_window_minutes = 30, burn_rate = 6 },
    { severity = "ticket", long_window_minutes = 4320, short_window_minutes = 360, burn_rate = 1 },
  ]

  validation {
    condition     = alltrue([for a in var.burn_rate_alerts : contains(["page", "ticket"], a.severity)])
    error_message = "Each burn_rate_alerts severity is page or ticket."
  }
  validation {
    condition = alltrue([for a in var.burn_rate_alerts :
      a.short_window_minutes >= 1 && a.short_window_minutes < a.long_window_minutes
      && floor(a.short_window_minutes) == a.short_window_minutes && floor(a.long_window_minutes) == a.long_window_minutes
    ])
    error_message = "Each burn_rate_alerts row has whole-minute windows with 0 < short_window_minutes < long_window_minutes: the short window only confirms that the long one's burn is still going on."
  }
  validation {
    condition     = alltrue([for a in var.burn_rate_alerts : a.burn_rate > 0])
    error_message = "Each burn_rate_alerts burn_rate is above 0 (1 spends the budget exactly over the period)."
  }
  validation {
    condition     = contains([for a in var.burn_rate_alerts : a.severity], "page")
    error_message = "burn_rate_alerts needs at least one page row: without one, an outage only opens a ticket."
  }
  validation {
    condition     = length(var.burn_rate_alerts) == length(distinct([for a in var.burn_rate_alerts : a.long_window_minutes]))
    error_message = "Each burn_rate_alerts row has a long_window_minutes of its own: it names the row's alert policies."
  }
}

variable "regional_burn_rate_alerts" {
  description = "Also alert on each region's objectives, not only the whole service's. Off: a region that fails while retries and failover keep users served would page for a fault nobody saw, and each region adds 2 x burn_rate_alerts policies (Cloud Monitoring may bill each condition). The regions' objectives and their budgets are on the dashboard either way."
  type        = bool
  default     = false
}

variable "uptime_check_regions" {
  description = "Where the uptime checks run from: USA (3 checkers), USA_OREGON, USA_IOWA, USA_VIRGINIA, SOUTH_AMERICA, EUROPE, ASIA_PACIFIC (1 each). The default, one on each of three continents, is Cloud Monitoring's minimum of three checkers, and lets the uptime alert tell a regional network problem (one place failing) from the service failing (two or more)."
  type        = list(string)
  default     = ["USA_VIRGINIA", "EUROPE", "ASIA_PACIFIC"]

  validation {
    condition     = length(var.uptime_check_regions) == length(distinct(var.uptime_check_regions)) && alltrue([for r in var.uptime_check_regions : contains(["USA", "USA_OREGON", "USA_IOWA", "USA_VIRGINIA", "SOUTH_AMERICA", "EUROPE", "ASIA_PACIFIC"], r)])
    error_message = "uptime_check_regions are Cloud Monitoring's checker regions, each once: USA, USA_OREGON, USA_IOWA, USA_VIRGINIA, SOUTH_AMERICA, EUROPE, ASIA_PACIFIC."
  }
  validation {
    # USA and its three parts are all one continent, North America.
    condition     = length(distinct([for r in var.uptime_check_regions : can(regex("^USA", r)) ? "USA" : r])) >= 3
    error_message = "uptime_check_regions must span at least three continents (USA*, SOUTH_AMERICA, EUROPE, ASIA_PACIFIC): the uptime alert needs two places failing, and two places on one continent share its networks."
  }
}

variable "uptime_check_period_seconds" {
  description = "How often each uptime check runs from each of uptime_check_regions. 60: the defaults make 2 checks x 3 places x 43,200 minutes = 259,200 executions in a 30-day month, within the first million a project gets free each month (0.30 USD per 1,000 after)."
  type        = number
  default     = 60

  validation {
    condition     = contains([60, 300, 600, 900], var.uptime_check_period_seconds)
    error_message = "uptime_check_period_seconds is one of Cloud Monitoring's periods: 60, 300, 600 or 900."
  }
}
