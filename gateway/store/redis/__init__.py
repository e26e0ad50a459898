"""gateway/store/redis"""
