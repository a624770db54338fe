// Every reason code the promoter writes — in a decision record (KV `segserve_decisions`), a
// rollout record (KV `segserve_rollouts`), a rollout event, a verification report or a policy
// verdict — with one sentence a person can read. The CLI prints the sentence next to the code
// (`segserve decisions`, `segserve rollout watch|status`); docs/promotion.md#reason-codes lists
// the same table (test/repo/reason-codes.test.ts keeps the two equal). Every field that carries
// a code is typed `ReasonCode`, so a code missing here does not compile.

/** Where a code is decided: the decision stages of docs/architecture.md#promotion, plus the outcome. */
export type ReasonCodeStage = 'schema' | 'signature' | 'artifact' | 'policy' | 'verification' | 'intake' | 'rollout';

export interface ReasonCodeEntry {
  readonly stage: ReasonCodeStage;
  /** One sentence: what happened and, where it helps, what to do. */
  readonly meaning: string;
}

export const REASON_CODES = {
  // schema: the message itself
  invalid_json: { stage: 'schema', meaning: 'The message is not UTF-8 JSON, so nothing in it could be read.' },
  schema_invalid: { stage: 'schema', meaning: 'The result does not match the ExperimentResult schema (a field missing, misspelt or of the wrong type).' },
  subject_mismatch: { stage: 'schema', meaning: 'The NATS subject is not segserve.experiments followed by a valid model name, or the result names another model than its subject.' },
  id_mismatch: { stage: 'schema', meaning: "The Nats-Msg-Id header is not the result's id, so a duplicate could not be recognised." },
  unknown_model: { stage: 'schema', meaning: 'The model has no promotion policy on this promoter, so no result for it can be decided.' },
  // signature
  signature_missing: { stage: 'signature', meaning: 'The result carries no Segserve-Signature / Segserve-Signer headers (publish with a signing seed).' },
  signer_unknown: { stage: 'signature', meaning: "The result is signed by a key that is not one of the promoter's configured signers." },
  signature_invalid: { stage: 'signature', meaning: "The signature does not verify with the signer's key: the result was altered, or signed with another key." },
  // artifact: what the object store holds
  artifact_missing: { stage: 'artifact', meaning: "The result's model.onnx is not in the object store (segserve publish uploads it before the result)." },
  artifact_size_mismatch: { stage: 'artifact', meaning: 'The stored model.onnx has another size than the result claims.' },
  artifact_digest_mismatch: { stage: 'artifact', meaning: 'The stored model.onnx has another sha256 than the result claims.' },
  manifest_missing: { stage: 'artifact', meaning: 'The model.json that goes with the model.onnx is not in the object store.' },
  manifest_invalid: { stage: 'artifact', meaning: 'The stored model.json is not a valid model manifest.' },
  manifest_mismatch: { stage: 'artifact', meaning: "The stored model.json describes another model, version or file than this result's." },
  // policy: the claimed figures; the same codes at stage verification judge the measured ones
  metric_missing: { stage: 'policy', meaning: 'A figure the policy judges (mIoU, p95 latency, peak RSS) is missing or not a finite number.' },
  limit_exceeded: { stage: 'policy', meaning: "A figure is beyond one of the policy's absolute limits (e.g. a p95 above limits.latency_ms_p95, an mIoU under miou_min); a machine-bound limit that the stable, measured beside the candidate, breaks too is waived." },
  worse_than_stable: { stage: 'policy', meaning: "At least one objective is worse than the stable's by more than its tolerance." },
  no_improvement: { stage: 'policy', meaning: 'Nothing is worse than the stable, but no objective improves on it by its minimum improvement.' },
  same_as_stable: { stage: 'policy', meaning: "The candidate's model.onnx is byte for byte the stable's." },
  baseline_not_stable: { stage: 'policy', meaning: 'The result claims ratios to a baseline that is not the current stable: measure again against the stable with segserve eval --against.' },
  beats_stable: { stage: 'policy', meaning: 'Policy verdict: at least one objective is better than the stable and none is worse beyond its tolerance.' },
  first_model_within_limits: { stage: 'policy', meaning: 'Policy verdict: there is no stable yet and every absolute limit holds.' },
  // verification: the promoter measures the candidate (and the stable beside it) on a golden set
  golden_missing: { stage: 'verification', meaning: 'No golden set that the policy accepts can be read by the promoter.' },
  golden_mismatch: { stage: 'verification', meaning: 'The claims were measured on a golden set the policy does not accept, so they cannot be checked.' },
  claim_not_reproduced: { stage: 'verification', meaning: "Measured on the golden set, a claimed figure (or a claimed ratio to the stable) is off by more than the policy's tolerance." },
  claims_reproduced: { stage: 'verification', meaning: "Every claim was reproduced on the golden set within the policy's tolerance." },
  measurement_missing: { stage: 'verification', meaning: 'A claimed figure could not be measured on the golden set (no latency or memory samples came back).' },
  verification_failed: { stage: 'verification', meaning: 'The golden set could not be run through the candidate, or the stable could not be measured beside it.' },
  verification_error: { stage: 'verification', meaning: 'The verifier itself failed (an error in the promoter, not a verdict on the model).' },
  verification_skipped: { stage: 'verification', meaning: 'The policy turns golden-set verification off, so the candidate goes to the canary unverified.' },
  verified: { stage: 'verification', meaning: 'Measured on the golden set, the claims reproduce and the candidate still beats the stable: the canary starts.' },
  // intake
  accepted: { stage: 'intake', meaning: 'In progress: the result passed the intake checks and its rollout (verification, canary, bake) is under way.' },
  intake_error: { stage: 'intake', meaning: 'The intake failed on this result every time it was delivered, so it recorded the failure and moved on.' },
  // rollout: the canary, the promotion and the bake
  not_ready: { stage: 'rollout', meaning: "The candidate's inference processes or pods did not become ready within the readiness timeout." },
  canary_failed: { stage: 'rollout', meaning: 'The canary stopped serving; it was removed and the stable kept all traffic.' },
  canary_analysis_failed: { stage: 'rollout', meaning: 'The canary failed more checks against the stable (error rate, p95 latency ratio, memory) than the policy allows; all traffic went back to the stable.' },
  no_evidence: { stage: 'rollout', meaning: 'No check was decisive: a canary step held max_holds times in a row, or the bake had no passing check after its extensions (it ends Succeeded with this code only where the policy says on_no_evidence: succeed).' },
  promotion_failed: { stage: 'rollout', meaning: 'The promoted version did not become ready as the stable, so the previous stable stayed.' },
  bake_regression: { stage: 'rollout', meaning: 'The new stable stopped serving or failed its checks during the bake, so the previous stable was restored.' },
  manual_rollback: { stage: 'rollout', meaning: 'Someone asked for a rollback (segserve rollback): the previous stable serves again.' },
  superseded: { stage: 'rollout', meaning: "The model's rollout state moved on to another experiment while this one ran (only a manual change of the state does that)." },
  inconsistent_state: { stage: 'rollout', meaning: 'The stored rollout state contradicted itself (e.g. a canary phase without a canary), so the rollout was stopped.' },
  promoted: { stage: 'rollout', meaning: 'The candidate passed verification, every canary step and a bake with a passing check: it is the stable now.' },
} as const satisfies Readonly<Record<string, ReasonCodeEntry>>;

export type ReasonCode = keyof typeof REASON_CODES;

export const REASON_CODE_LIST = Object.keys(REASON_CODES) as readonly ReasonCode[];

export function isReasonCode(code: string): code is ReasonCode {
  return Object.hasOwn(REASON_CODES, code);
}

/** The sentence for `code`; undefined for a code this version does not know (a record from a newer promoter). */
export function reasonMeaning(code: string): string | undefined {
  return isReasonCode(code) ? REASON_CODES[code].meaning : undefined;
}

/** The verdict of one canary or bake check window. */
export const CHECK_VERDICTS = {
  pass: 'The window had enough requests and every check was within the policy: the canary moves to its next step (or the bake counts a passing check).',
  hold: 'Not decisive yet: too few requests in the window, or the p95 ratio interval straddles the limit (in the bake: only when the ratio itself is above it); the golden set is replayed, the window grows and the check runs again (max_holds holds in a row end the step with no_evidence).',
  fail: 'A check is decisively outside the policy (error rate, a p95 ratio interval wholly above the limit, memory); max_failed_checks of them roll the canary back.',
} as const;

export type CheckVerdict = keyof typeof CHECK_VERDICTS;
