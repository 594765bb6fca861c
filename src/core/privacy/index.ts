// Differential privacy for baffle's uploads: the RDP accountant of the sampled Gaussian mechanism
// (docs/privacy.md). Platform-free.

export {
  DEFAULT_ALPHAS,
  DEFAULT_CONVERSION,
  PrivacyAccountant,
  PrivacyBudgetError,
  computeRdp,
  epsilonFor,
  noiseMultiplierFor,
  rdpSampledGaussian,
  rdpToEpsilon,
  type AnalysisOptions,
  type Conversion,
  type MechanismSteps,
  type NoiseMultiplierOptions,
  type PrivacyAccountantOptions,
  type PrivacyAccountantState,
  type PrivacySpent,
} from './rdp.ts';
