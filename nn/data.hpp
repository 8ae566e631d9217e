// Everything about data in one include: CSV and IDX readers, Fashion-MNIST, synthetic 2-D datasets,
// the DataLoader, train/test splitting, standardisation and the classification metrics.
#pragma once

#include <nn/csv.hpp>
#include <nn/dataloader.hpp>
#include <nn/datasets.hpp>
#include <nn/idx.hpp>
#include <nn/metrics.hpp>
#include <nn/standardizer.hpp>
