// Usage text of `baffle report` (kept apart from src/cli/report.ts, which loads the plotting libraries).
export const REPORT_USAGE = `  baffle report DIR... [--out OUT] [--md FILE] [--title TEXT] [--intro FILE] [--archive DIR]
      Read finished run directories (a suite's output directory, single runs, \`baffle memory\` output) and
      write a markdown report with tables and PNG plots (accuracy over epochs, final accuracy vs K, BAFFLE vs
      backprop, bytes per round, forward passes, wall time, client memory) to OUT (default: DIR/report).
      --md writes the markdown to FILE instead of OUT/report.md (image and run links stay relative);
      --intro puts FILE's markdown under the title; --archive first copies the inputs' records (not the
      weights) to DIR and reports from that copy, so the report can be regenerated from a committed archive.
`;
