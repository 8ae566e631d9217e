// Everything about data in one include: CSV and IDX readers, Fashion-MNIST, synthetic 2-D datasets,
// the DataLoader, train/test splitting and standardisation.
#pragma once

#include <nn/data/csv.hpp>
#include <nn/data/dataloader.hpp>
#include <nn/data/datasets.hpp>
#include <nn/data/idx.hpp>
#include <nn/data/standardizer.hpp>
