# frozen_string_literal: true

# Task ids and data that look like SQL, LIKE patterns or bind parameters.
# They are valid names and values: every store must keep them as given and
# reach only their own task with them (parameters, never SQL built from
# strings; no LIKE where = is meant; no case folding or trimming). Used by
# the bad-input matrix, on every store.
module SqlLookalikes
  TEXT = "x'); DROP TABLE checkpoints; --"

  IDS = [TEXT, "' OR '1'='1", "%", "_", "\\", "$1", "t%", "ta_k", "TASK", "task ", "task;--", "$$", "E'\\x00'"].freeze

  DATA = {
    "'; DELETE FROM master.checkpoints; --" => TEXT, sql: "1; DROP SCHEMA master CASCADE; SELECT '",
    like: "%_\\%", params: ["$1", "$2::text", ":name", "?"], quotes: "\"'`", dollar: "$$ DROP TABLE x $$",
    nul: "a\u0000b", "nul\u0000key" => "NUL in a key", escapes: "\\x00\\u0000\\.\n\t", e_string: "E'\\x41'",
    symbol: :"'; DROP TABLE checkpoints; --", nested: [{ "' OR 1=1 --" => [nil, true, -1, 1.5] }]
  }.freeze
end
