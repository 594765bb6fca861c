// Usage text of `baffle report` (kept apart from src/cli/report.ts, which loads the plotting libraries).
export const REPORT_USAGE = `  baffle report DIR... [--out OUT] [--md FILE] [--title TEXT]
      Read finished run directories (a suite's output directory, single runs, \`baffle memory\` output) and
      write a markdown report with tables and PNG plots (accuracy over epochs, final accuracy vs K, BAFFLE vs
      backprop, bytes per round, forward passes, wall time) to OUT (default: report/ inside the first DIR).
      --md writes the markdown to FILE instead of OUT/report.md (links to OUT's PNGs stay relative).
`;
