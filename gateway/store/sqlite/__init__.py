"""gateway/store/sqlite"""
