"""The run and sweep folder format, in one place: the names of the files a run or a sweep
leaves (`names`), the statuses a run can end with and what each means for the exit code, the
test and the sweep table (`status`), metrics.json written and flattened (`metrics`), the one
atomic, never-through-a-symlink writer (`atomic`), and the run lock (`lock`). Bounded reading
of what a folder holds lives in `read`, text from disk made safe to show in `text`.

Imports nothing of torch and no other dlx package but `errors`: every layer may import it.
"""
