#!/usr/bin/env groovy
def appName = 'shop'

def notify(String status, int code = 0) {
    echo "${appName}: ${status}"
}

String versionOf(String raw) {
    return raw.trim() + '-' + env.BUILD_NUMBER
}

def fact(n) { n <= 1 ? 1 : n * fact(n - 1) }

pipeline {
    agent any
    stages {
        stage('A') {
            steps {
                script {
                    notify('started')
                    echo versionOf(' 1.2 ')
                    echo "fact=${fact(5)}"
                }
            }
        }
    }
}
