"""The three workspaces of the main window: Review, Train, Evaluate (Ctrl+1/2/3).

Each is a thin Qt adapter over the same project and controller; the main window switches between
them and enables each one's keys only while it is shown.
"""
