# frozen_string_literal: true

module MASTER
  class CLI
    # Usage, description and examples of each subcommand, for --help.
    SUBCOMMANDS = {
      "create" => {
        usage: "--task T [--data JSON] [--progress N] [--items-total N] [--message M]",
        about: <<~TEXT,
          Writes the next checkpoint of task T by hand. Whatever you leave out
          carries over from the task's last checkpoint (data, progress, budget).
          --data is the task's own data (what restore gives as state[:data]);
          --progress is the count of items done.
        TEXT
        examples: ["create --task \"current-task\" --data '{\"progress\": 50}'",
                   "create --task import-users --progress 45 --items-total 100 --message \"paused\""]
      },
      "list" => {
        usage: "",
        about: <<~TEXT,
          Lists every task in the store, newest first: when it was last
          checkpointed, how far it got, and what it spent.
        TEXT
        examples: ["list", "list --json | jq -r '.[].task_id'"]
      },
      "show" => {
        usage: "TASK",
        about: <<~TEXT,
          Shows one task and each of its checkpoints (number, time, status,
          progress, message). A damaged checkpoint file is shown as damaged.
        TEXT
        examples: ["show refactor-users-module"]
      },
      "resume" => {
        usage: "TASK | --latest [--checkpoint N]",
        about: <<~TEXT,
          Prints, as JSON, the state a session for TASK resumes from: its newest
          intact checkpoint (or checkpoint N). --latest takes the task that was
          checkpointed most recently. Nothing is written.
        TEXT
        examples: ["resume refactor-users-module", "resume --latest --json | jq .data"]
      },
      "clean" => {
        usage: "[--older-than AGE] [--completed] [--dry-run]",
        about: <<~TEXT,
          Removes whole tasks.
            --older-than AGE  tasks whose last checkpoint is older than AGE, running
                              or completed (failed ones too if keep_failed: false)
            --completed       completed tasks of any age (with --older-than: only
                              the completed ones older than AGE)
            neither           the configured retention: completed tasks older than
                              keep_successful days, failed ones too unless
                              keep_failed; running tasks are kept
          AGE is a number and a unit: 45s, 30m, 12h, 7d, 2w.
        TEXT
        examples: ["clean --older-than 7d", "clean --completed --dry-run", "clean"]
      },
      "remove" => {
        usage: "TASK",
        about: "Removes task TASK and all its checkpoints.\n",
        examples: ["remove refactor-users-module"]
      },
      "cancel" => {
        usage: "TASK",
        about: <<~TEXT,
          Cancels queue task TASK: in whichever process or machine runs it, it
          stops at its next tick, checkpoint or track_cost (MASTER::CancelledError)
          and is recorded as cancelled; a task no worker has started is never run.
          The queue goes on with its other tasks.
        TEXT
        examples: ["cancel refactor-users-module"]
      },
      "migrate" => {
        usage: "[--dir DIR]",
        about: <<~TEXT,
          Imports the checkpoint_<epoch>.json files MASTER v52 wrote (in the store's
          directory: --dir DIR, or the configured checkpoint_dir) as checkpoints of
          the task master-v52, oldest first, where SessionRecovery.new (without
          task_id:) finds them. The files are kept, and recorded as imported in
          .master-v52-imported.json beside them, so they are not read again.
          Running it again imports nothing twice; a damaged file is skipped
          with a warning.
        TEXT
        examples: ["migrate --dir var/checkpoints", "migrate --json"]
      },
      "migrate-config" => {
        usage: "FILE",
        about: <<~TEXT,
          Rewrites a config file that still has the old `session:` section so it
          says `session_recovery:`, keeping every value and comment (checkpoint_dir
          too, so the checkpoints already written are still found). The old file
          is kept as FILE.bak (FILE.bak.1, .2 ... if that exists). A file already
          in the new form is left alone.
        TEXT
        examples: ["migrate-config config/session_recovery.yml"],
        store: false
      }
    }.freeze
  end
end
