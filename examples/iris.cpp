// Fisher's iris: 150 flowers, 4 measurements, 3 species. An MLP with one hidden layer of 16 ReLU units,
// trained on 80% of the rows (standardised), classifies the 30 held-out flowers; setosa is easy, the
// other two overlap a little. Prints the test accuracy and the confusion matrix.
#include "csv_classifier.hpp"

int main(int argc, char** argv) {
  csv_classifier::Settings s;
  s.csv = GG_DATA_DIR "/iris.csv";
  s.class_names = {"setosa", "versicolor", "virginica"};
  s.hidden = {16};
  s.test_fraction = 0.2;
  s.lr = 0.01;
  s.epochs = 50;
  s.batch_size = 16;
  return csv_classifier::main_with(
      argc, argv, "iris", s, [](const csv_classifier::Result& r) { return r.test_accuracy >= 0.9 ? 0 : 1; });
}
