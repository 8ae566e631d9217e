// gg::plot — small, dependency-free SVG charts a browser opens: LineChart (loss curves, log y, dashes
// and markers), small_multiples (charts side by side) and decision_regions (a 2-D classifier's
// predicted class over a grid, with the training points). Files are written atomically
// (gg::AtomicFile): a reader sees the old file or the whole new one, never half.
#pragma once

#include <nn/plot/decision_regions.hpp>
#include <nn/plot/line_chart.hpp>
#include <nn/plot/svg.hpp>
