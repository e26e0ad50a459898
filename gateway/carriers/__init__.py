"""gateway/carriers"""
