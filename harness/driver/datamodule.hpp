// The DataModule API: Lightning's LightningDataModule hooks, plus the proposed
// on_exception hook, for datamodules written in C++ and run by reclaim's
// driver (driver.hpp).
//
// Lifecycle, as the driver calls it (Lightning's order):
//   prepare_data()              only on local rank 0
//   setup(stage)
//   *_dataloader()              the loaders the stage needs
//   Loader::next() ...          batches
//   state_dict()                fit only
//   teardown(stage)             success path only
//   on_exception(error)         failure path only, exactly once, instead of teardown
//
// Hooks report failure by throwing; the driver turns any exception escaping a
// hook or a loader into the failure path.
#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "model/model.hpp"

namespace reclaim {

// The trainer stage a hook runs for; one per entry.
enum class Stage { fit, validate, test, predict };

constexpr Entry to_entry(Stage s) {
  switch (s) {
    case Stage::fit: return Entry::fit;
    case Stage::validate: return Entry::validate;
    case Stage::test: return Entry::test;
    case Stage::predict: return Entry::predict;
  }
  return Entry::fit;
}

constexpr Stage to_stage(Entry e) {
  switch (e) {
    case Entry::fit: return Stage::fit;
    case Entry::validate: return Stage::validate;
    case Entry::test: return Stage::test;
    case Entry::predict: return Stage::predict;
  }
  return Stage::fit;
}

// "fit", "validate", "test", "predict" — the entry names of the wire protocol.
constexpr std::string_view stage_name(Stage s) {
  switch (s) {
    case Stage::fit: return "fit";
    case Stage::validate: return "validate";
    case Stage::test: return "test";
    case Stage::predict: return "predict";
  }
  return "fit";
}

constexpr std::optional<Stage> parse_stage(std::string_view s) {
  for (Stage st : {Stage::fit, Stage::validate, Stage::test, Stage::predict})
    if (stage_name(st) == s) return st;
  return std::nullopt;
}

struct Batch {
  std::string data;
};

// One pass over a dataset. next() returns the next batch, nullopt when the
// dataset is exhausted, and throws when the loader failed (a worker died).
class Loader {
 public:
  virtual ~Loader() = default;
  virtual std::optional<Batch> next() = 0;
};

// A loader with no batches: what the default *_dataloader() hooks return.
class EmptyLoader final : public Loader {
 public:
  std::optional<Batch> next() override { return std::nullopt; }
};

class DataModule {
 public:
  virtual ~DataModule() = default;

  virtual void prepare_data() {}
  virtual void setup(Stage) {}
  virtual std::unique_ptr<Loader> train_dataloader();
  virtual std::unique_ptr<Loader> val_dataloader();
  virtual std::unique_ptr<Loader> test_dataloader();
  virtual std::unique_ptr<Loader> predict_dataloader();
  virtual std::string state_dict() { return {}; }
  virtual void teardown(Stage) {}
  // Called once when the run fails (exception, interrupt, failed loader), with
  // the error. Must release everything the module created; teardown will not
  // be called. An exception escaping it is reported and ignored.
  virtual void on_exception([[maybe_unused]] const std::exception& error) {}
};

}  // namespace reclaim
