// Handwritten digits (UCI, 8x8 pixels of 0..16 ink, 1797 images): an MLP with one hidden layer of 64
// ReLU units, trained on 80% of the images, recognises ~97% of the rest. Prints the confusion matrix
// and draws some of the digits it got wrong, as text.
#include "csv_classifier.hpp"

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

namespace {

/// Up to `count` misclassified test images side by side, 8 x 8 characters each (darker = more ink).
void draw_mistakes(const csv_classifier::Result& r, std::size_t count) {
  std::vector<std::int64_t> wrong;
  for (std::int64_t i = 0; i < r.y_test.numel(); ++i)
    if (r.predicted.flat(i) != r.y_test.flat(i)) wrong.push_back(i);
  if (wrong.empty()) return;
  wrong.resize(std::min(wrong.size(), count));
  const std::string shades = " .:-=+*#%@";
  std::cout << "\nsome test digits it got wrong:\n";
  for (std::int64_t i : wrong)
    std::cout << fmt::format("{:<14}", fmt::format("  {} as {}", r.y_test.flat(i), r.predicted.flat(i)));
  std::cout << "\n";
  for (int row = 0; row < 8; ++row) {
    for (std::int64_t i : wrong) {
      std::cout << "  ";
      for (int col = 0; col < 8; ++col) {
        const double ink = r.x_test_raw.flat(64 * i + 8 * row + col); // 0..16
        const auto shade =
            static_cast<std::size_t>(ink / 16.0 * static_cast<double>(shades.size() - 1) + 0.5);
        std::cout << shades[std::min(shade, shades.size() - 1)];
      }
      std::cout << "    ";
    }
    std::cout << "\n";
  }
}

} // namespace

int main(int argc, char** argv) {
  csv_classifier::Settings s;
  s.csv = GG_DATA_DIR "/digits.csv";
  s.class_names = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  s.hidden = {64};
  s.test_fraction = 0.2;
  s.lr = 1e-3;
  s.epochs = 30;
  s.batch_size = 32;
  return csv_classifier::main_with(argc, argv, "digits", s, [](const csv_classifier::Result& r) {
    draw_mistakes(r, 6);
    return r.test_accuracy >= 0.95 ? 0 : 1;
  });
}
