// Every SEGSERVE_* environment variable any segserve process understands: a contract between
// the processes of one stack, which share one environment. Each service validates the variables
// it uses; a SEGSERVE_* name that no service knows is a typo and fails start-up, naming the
// variable (checkUnknownVars in @segserve/runtime). A name another service uses is ignored.
//
// Append-only list: one line per variable, with the services that read it.
export const SEGSERVE_ENV_VARS = [
  'SEGSERVE_GRPC_PORT', // inference (50051), gateway (9090)
  'SEGSERVE_HTTP_PORT', // gateway (8080)
  'SEGSERVE_METRICS_PORT', // inference (9100), promoter (9102)
  'SEGSERVE_MODEL_DIR', // inference
  'SEGSERVE_MODEL_NAME', // inference (object store)
  'SEGSERVE_MODEL_VERSION', // inference (object store)
  'SEGSERVE_MODEL_SHA256', // inference (object store)
  'SEGSERVE_NATS_URL', // inference, gateway, promoter, CLI
  'SEGSERVE_UPSTREAMS', // gateway
  'SEGSERVE_MAX_CONCURRENCY', // inference
  'SEGSERVE_MAX_QUEUE', // inference
  'SEGSERVE_QUEUE_TIMEOUT_MS', // inference
  'SEGSERVE_API_KEYS', // gateway
  'SEGSERVE_POLICY', // promoter
  'SEGSERVE_DEPLOYER', // promoter
  'SEGSERVE_PROMETHEUS_URL', // promoter
  'SEGSERVE_LOG_LEVEL', // all
  'SEGSERVE_DEADLINE_MS', // gateway (upstream call deadline, 30000)
  'SEGSERVE_DEFAULT_MODEL', // gateway (model of POST /segmentator-api)
  'SEGSERVE_HOST', // gateway (bind address, 0.0.0.0)
  'SEGSERVE_MAX_INPUT_PIXELS', // inference (decode limit, 24000000)
  'SEGSERVE_MAX_MESSAGE_BYTES', // inference (gRPC send/receive limit, 33554432)
  'SEGSERVE_SHUTDOWN_GRACE_MS', // inference (drain before forced exit, 20000)
  'SEGSERVE_MAX_CONNECTION_AGE_MS', // inference (gRPC max connection age, 60000)
  'SEGSERVE_ORT_SESSIONS', // inference (onnxruntime sessions = runs at once, 1)
  'SEGSERVE_INTRA_OP_THREADS', // inference (onnxruntime threads per run)
  'SEGSERVE_INTER_OP_THREADS', // inference (onnxruntime, 1)
  'SEGSERVE_ORT_ARENA', // inference (onnxruntime CPU memory arena: auto|on|off, auto)
  'SEGSERVE_ORT_MEM_PATTERN', // inference (onnxruntime memory pattern, true)
  'SEGSERVE_ORT_SPINNING', // inference (onnxruntime intra-op threads spin between sections, false)
  'SEGSERVE_MODEL_CACHE_DIR', // inference (object-store download cache)
  'SEGSERVE_FAULT_DELAY_MS', // inference, TEST ONLY: added latency per request
  'SEGSERVE_FAULT_ERROR_RATIO', // inference, TEST ONLY: fraction of requests failing INTERNAL
  'SEGSERVE_SIGNING_SEED', // CLI publish (ed25519 nkeys seed `SU…`; or --seed-file)
  'SEGSERVE_SIGNERS', // promoter (comma-separated public nkeys `U…` whose results are accepted)
  'SEGSERVE_GOLDEN_ROOT', // promoter (directory with <model>/golden/{images,masks}; default models/)
  'SEGSERVE_MODEL_ROOTS', // promoter, local driver (comma-separated dirs with <model>/<version>/; default models/)
  'SEGSERVE_INITIAL_STABLE', // promoter (comma-separated <model>/<version> dirs served as stable when a model has no rollout state)
  'SEGSERVE_LOCAL_VERSION_ENV', // promoter, local driver, TEST ONLY: JSON {version: {VAR: value}} extra env per version
  'SEGSERVE_MEMORY_LIMIT_MB', // inference, gateway (memory limit where no cgroup sets one, 512; admission budget)
  'SEGSERVE_MAX_ASPECT_FACTOR', // inference (how far an image's aspect ratio may be from the model input's, 8)
] as const;

export type SegserveEnvVar = (typeof SEGSERVE_ENV_VARS)[number];
