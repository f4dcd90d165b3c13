# /// script
# [tool.robotni]
# description = "Test type: writes a file into its data folder and reports who it ran as and what it was given."
# soft_time_limit = 10
# data_folder = "archive"
# ///
import json
import os

folder = os.environ["ROBOTNI_DATA_FOLDER"]
with open(os.path.join(folder, os.environ["ROBOTNI_JOB_ID"]), "w") as f:
    f.write("kept")
with open(os.environ["ROBOTNI_RESULT"], "w") as f:
    json.dump({"uid": os.getuid(), "folder": folder, "env": sorted(os.environ)}, f)
